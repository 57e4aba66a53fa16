import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import openapiTS, { astToString } from 'openapi-typescript';
import { packageRoot } from '../../src/config/config.js';
import { openFreshDb } from '../helpers/db.js';
import { startTestTessera } from '../helpers/tessera.js';

// A client generated from the served /openapi.json (openapi-typescript types, openapi-fetch
// calls), as a user would make one: it must compile under `tsc --strict` with typed params and
// usage, no casts, and run a job end to end against a real server.

const run = promisify(execFile);

const CLIENT = `import createClient from 'openapi-fetch';
import type { paths } from './schema.js';

const client = createClient<paths>({ baseUrl: process.env.TESSERA_URL!, headers: { Authorization: \`Bearer \${process.env.TESSERA_API_KEY!}\` } });

const created = await client.POST('/v1/customer/jobs', {
  body: {
    templateId: 'word-count',
    name: 'typed',
    params: { partitioner: { chunks: 2 }, app: {}, assembler: {} },
    dataSource: { dataSourceDescriptor: 'url', params: { url: process.env.SOURCE_URL! } },
    config: { taskTimeout: 60, maxTaskRetries: 1, workerPool: 'WORKER_POOL_ANY' },
  },
});
if (created.error) throw new Error(\`create: \${created.error.code} \${created.error.message}\`);
const jobId: string = created.data.job?.id ?? '';
const ran = await client.POST('/v1/customer/jobs/{jobId}/run', { params: { path: { jobId } }, body: {} });
if (ran.error) throw new Error(\`run: \${ran.error.message}\`);

let state = '';
let tasksDone = -1;
for (let poll = 0; poll < 1200 && state !== 'JOB_STATE_COMPLETE' && state !== 'JOB_STATE_FAILED'; poll++) {
  if (poll > 0) await new Promise((resolve) => setTimeout(resolve, 100));
  const { data, error } = await client.GET('/v1/customer/jobs/{jobId}', { params: { path: { jobId } } });
  if (error) throw new Error(\`get: \${error.message}\`);
  state = data.job?.state ?? '';
  tasksDone = data.job?.usage?.tasksDone ?? -1;
}
const results = await client.GET('/v1/customer/jobs/{jobId}/results', { params: { path: { jobId } } });
const running = await client.POST('/v1/customer/jobs/runningTasks', { body: { jobsIds: [jobId] } });
const info = await client.GET('/v1/customer/info');
const missing = await client.GET('/v1/customer/jobs/{jobId}', { params: { path: { jobId: 'nosuch' } } });
console.log(JSON.stringify({
  state,
  tasksDone,
  results: (results.data?.results ?? []).map((result) => result.name ?? ''),
  running: running.data?.jobsRunningTasks[jobId],
  version: info.data?.version.tag,
  notFound: missing.error?.code,
}));
`;

test('a client generated from /openapi.json compiles under tsc --strict and runs a job end to end', { timeout: 180_000 }, async () => {
  const { db, drop } = await openFreshDb('pglite');
  const tessera = await startTestTessera(db, { workerSlots: 2 });
  const source = http.createServer((_request, response) => response.end('red green blue red\n'.repeat(50)));
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  // Inside the package, so that the client finds openapi-fetch in its node_modules.
  const cache = path.join(packageRoot(), 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const folder = mkdtempSync(path.join(cache, 'generated-client-'));
  try {
    const document = await (await fetch(`${tessera.url}/openapi.json`)).json();
    writeFileSync(path.join(folder, 'schema.d.ts'), astToString(await openapiTS(document as never)));
    writeFileSync(path.join(folder, 'client.ts'), CLIENT);
    writeFileSync(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
    const tsc = path.join(packageRoot(), 'node_modules', 'typescript', 'bin', 'tsc');
    const options = ['--strict', '--noEmitOnError', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', '--outDir', path.join(folder, 'out')];
    await run(process.execPath, [tsc, ...options, path.join(folder, 'client.ts')], { cwd: folder }).catch((error: { stdout?: string }) => {
      assert.fail(`the generated client does not compile under tsc --strict:\n${error.stdout ?? error}`);
    });
    const env = { ...process.env, TESSERA_URL: tessera.url, TESSERA_API_KEY: tessera.apiKey, SOURCE_URL: `http://127.0.0.1:${(source.address() as AddressInfo).port}/colours.txt` };
    const { stdout } = await run(process.execPath, [path.join(folder, 'out', 'client.js')], { env, timeout: 120_000 });
    const outcome = JSON.parse(stdout.trim());
    assert.equal(outcome.state, 'JOB_STATE_COMPLETE', stdout);
    assert.equal(outcome.tasksDone, 2);
    assert.ok(outcome.results.length > 0, stdout);
    assert.equal(outcome.running, 0);
    assert.match(outcome.version, /^v\d+\.\d+\.\d+/);
    assert.equal(outcome.notFound, 5);
  } finally {
    rmSync(folder, { recursive: true, force: true });
    source.close();
    await tessera.stop();
    await drop();
  }
});
