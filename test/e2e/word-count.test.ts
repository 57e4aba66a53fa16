import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { JOB_STATES } from '../../src/domain/job-state.js';
import { listJobEvents } from '../../src/store/jobs.js';
import { forEachEngine } from '../helpers/db.js';
import { installComponents, installTemplate } from '../helpers/components.js';
import { checkResponse } from '../helpers/responses.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// The walking skeleton end to end: the word-count example job goes through every state over the
// public HTTP API, with real python child processes, and its downloaded counts are right.

// A text whose counts this test knows: mixed case, punctuation, digits, words split across lines.
const TEXT = `The quick brown fox jumps over the lazy dog.
THE dog sleeps; the fox runs 42 laps -- fox, FOX, fox!
Numbers like 42 and 7 count as words: 42 7 7.
Under_scores split words, and apostrophes don't join them.
`.repeat(25);

function expectedCounts(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  // The app counts maximal runs of letters and digits (Python's [^\W_]+), lower-cased.
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) counts[word] = (counts[word] ?? 0) + 1;
  return counts;
}

async function serve(text: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((_request, response) => response.writeHead(200, { 'content-type': 'text/plain' }).end(text));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/input.txt`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

forEachEngine('word-count runs NEW → … → COMPLETE and its result has the right counts', async (db) => {
  const tessera = await startTestTessera(db);
  const source = await serve(TEXT);
  try {
    const templates = await tessera.call('GET', '/v1/customer/jobs/templates');
    assert.equal(templates.status, 200);
    assert.ok(templates.body.data.some((template: { id: string }) => template.id === 'word-count'), 'word-count is a built-in template');

    const created = await tessera.call('POST', '/v1/customer/jobs', {
      templateId: 'word-count',
      name: 'count the fox',
      dataSource: { dataSourceDescriptor: 'url', params: { '@type': 'type.googleapis.com/bytenite.data_source.HttpDataSource', url: source.url } },
      params: { partitioner: { chunks: 3 } },
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    checkResponse('post', '/v1/customer/jobs', created);
    const jobId: string = created.body.job.id;
    assert.equal(created.body.job.state, 'JOB_STATE_NEW');
    assert.deepEqual(created.body.job.params.partitioner, { chunks: 3 }, 'the request overrides the template default of 4 chunks');
    assert.equal(created.body.job.config.taskTimeout, 300, 'template defaults fill what the request leaves out');
    assert.equal(created.body.templateInfo.id, 'word-count');

    const run = await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`);
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.equal(run.body.ok, true);

    const job = await waitFor('the job to end', async () => {
      const got = await tessera.call('GET', `/v1/customer/jobs/${jobId}`);
      return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(got.body.job.state) ? got : undefined;
    });
    checkResponse('get', '/v1/customer/jobs/{jobId}', job);
    assert.equal(job.body.job.state, 'JOB_STATE_COMPLETE', job.body.job.errorMessage);
    assert.equal(job.body.job.numChunks, 3);
    assert.equal(job.body.job.errorMessage, '');

    // Every state but FAILED was entered, in order, and the event log says the same.
    const timestamps = job.body.job.stateTimestamps as Record<string, string>;
    const lifecycle = JOB_STATES.filter((state) => state !== 'JOB_STATE_FAILED');
    assert.deepEqual(Object.keys(timestamps).sort(), [...lifecycle].sort());
    for (let index = 1; index < lifecycle.length; index++) {
      assert.ok(Date.parse(timestamps[lifecycle[index]!]!) >= Date.parse(timestamps[lifecycle[index - 1]!]!), `${lifecycle[index]} after ${lifecycle[index - 1]}`);
    }
    const events = (await listJobEvents(db, jobId)).filter((event) => event.kind === 'state').map((event) => event.state);
    assert.deepEqual(events, lifecycle);
    assert.ok(job.body.job.submittedAt && job.body.job.startedAt && job.body.job.endedAt);
    assert.ok(job.body.job.duration >= 0);

    // Every task ran in its own temporary folder, and none is left behind (the assembler's goes
    // just after it reports, so wait a moment for it).
    await waitFor('the temporary task folders to be removed', async () => !existsSync(tessera.config.workDir) || readdirSync(tessera.config.workDir).length === 0, 5_000);

    const results = await tessera.call('GET', `/v1/customer/jobs/${jobId}/results`);
    assert.equal(results.status, 200);
    checkResponse('get', '/v1/customer/jobs/{jobId}/results', results);
    assert.deepEqual(results.body.results.map((result: { name: string }) => result.name), ['counts.json']);
    const link: string = results.body.results[0].link;
    const download = await fetch(link);
    assert.equal(download.status, 200);
    assert.deepEqual(await download.json(), expectedCounts(TEXT));

    // The link is a capability: altered, it is refused; no API key is needed to follow it.
    const tampered = await fetch(link.replace(/signature=[^&]+/, 'signature=AAAA'));
    assert.equal(tampered.status, 403);
    assert.equal(((await tampered.json()) as any).code, 7);

    // The job shows up in the list and in a filtered search.
    const list = await tessera.call('GET', '/v1/customer/jobs?pagination.limit=10&pagination.offset=0');
    checkResponse('get', '/v1/customer/jobs', list);
    assert.equal(list.body.pagination.total, 1);
    const filtered = await tessera.call('POST', '/v1/customer/jobs/filter', {
      pagination: { limit: '5', offset: '0' },
      filters: [{ field: 'state', condition: 'FILTER_CONDITION_EQ', value: { '@type': 'type.googleapis.com/google.protobuf.Value', value: 'JOB_STATE_COMPLETE' } }],
    });
    assert.equal(filtered.status, 200, JSON.stringify(filtered.body));
    checkResponse('post', '/v1/customer/jobs/filter', filtered);
    assert.deepEqual(filtered.body.data.map((item: { id: string }) => item.id), [jobId]);

    // Another account cannot see it.
    const other = await tessera.call('GET', `/v1/customer/jobs/${jobId}`, undefined, tessera.otherApiKey);
    assert.equal(other.status, 404);
    assert.equal(other.body.code, 5);
    const otherResults = await tessera.call('GET', `/v1/customer/jobs/${jobId}/results`, undefined, tessera.otherApiKey);
    assert.equal(otherResults.status, 404);
  } finally {
    await source.close();
    await tessera.stop();
  }
});

// Leaves a tree in its work folder (its cwd): a few entries in odd chunks, 150 files and nested
// folders in even ones, and in both a symbolic link to a folder outside, which must survive.
const LITTERING_APP = `import json, os
n = int(os.environ["CHUNK_NUMBER"])
canary = json.loads(os.environ["APP_PARAMS"])["canary"]
os.makedirs("deep/er/still", exist_ok=True)
for i in range(150 if n % 2 == 0 else 2):
    with open("deep/er/file_%d.txt" % i if i % 2 else "file_%d.txt" % i, "w") as f:
        f.write("x" * i)
os.symlink(canary, "outside")
os.symlink(os.path.join(canary, "keep.txt"), "deep/keep-link")
`;

forEachEngine('task folders are removed however much an app leaves in them; symbolic links in them are removed, not followed', async (db) => {
  const canary = mkdtempSync(path.join(tmpdir(), 'tessera-canary-'));
  writeFileSync(path.join(canary, 'keep.txt'), 'still here');
  const tessera = await startTestTessera(db);
  try {
    await installComponents(tessera, [{ name: 'litter', type: 'app', entrypoint: 'main.py', code: LITTERING_APP }]);
    await installTemplate(tessera, { id: 'litter', description: '', app: 'litter', partitioner: 'empty-chunks', assembler: 'passthrough', params: { partitioner: { chunks: 6 }, app: { canary } } });
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'litter' });
    const jobId = created.body.job.id;
    assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
    const job = await waitFor('the job to end', async () => {
      const got = await tessera.call('GET', `/v1/customer/jobs/${jobId}`);
      return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(got.body.job.state) ? got.body.job : undefined;
    });
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    await waitFor('the task folders to be removed', async () => !existsSync(tessera.config.workDir) || readdirSync(tessera.config.workDir).length === 0, 5_000);
    assert.deepEqual(readdirSync(canary), ['keep.txt']);
    assert.equal(readFileSync(path.join(canary, 'keep.txt'), 'utf8'), 'still here');
  } finally {
    await tessera.stop();
    rmSync(canary, { recursive: true, force: true });
  }
});
