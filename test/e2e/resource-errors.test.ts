import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { withFreshDb } from '../helpers/db.js';
import { installComponents, installTemplate, runToEnd } from '../helpers/components.js';
import { startTestTessera } from '../helpers/tessera.js';

// Errors of what runs out or refuses, said plainly: a url source that refuses fails at once naming
// the URL and the status (what may pass is retried), a partitioner that makes no chunk is said so,
// and a full disk is RESOURCE_EXHAUSTED naming what is full, with the server serving on.

test('a url source that refuses fails at once; one that fails for a while is retried; no chunks is said so', { timeout: 120_000 }, async () => {
  await withFreshDb('pglite', async (db) => {
    let flaky = 0;
    const source = http.createServer((request, response) => {
      if (request.url === '/gone.txt') return void response.writeHead(404).end('no');
      if (request.url === '/flaky.txt' && flaky++ === 0) return void response.writeHead(503).end('later');
      response.end('some words here');
    });
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(source.address() as AddressInfo).port}`;
    const tessera = await startTestTessera(db);
    try {
      const run = (url: string) => runToEnd(tessera, { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url } } });
      const gone = await run(`${base}/gone.txt`);
      assert.equal(gone.state, 'JOB_STATE_FAILED');
      assert.match(gone.errorMessage, new RegExp(`the partitioner failed after 1 attempt: fetching the url source ${base}/gone.txt answered HTTP 404`));
      const flakyJob = await run(`${base}/flaky.txt`);
      assert.equal(flakyJob.state, 'JOB_STATE_COMPLETE', flakyJob.errorMessage);
      assert.equal(flaky, 2, 'the 503 was tried again');

      await installComponents(tessera, [{ name: 'no-chunks', type: 'partitioner', entrypoint: 'main.py', code: 'pass\n' }]);
      await installTemplate(tessera, { id: 'no-chunks', description: '', app: 'word-count', partitioner: 'no-chunks', assembler: 'passthrough', dataSource: { dataSourceDescriptor: 'bypass' } });
      const empty = await runToEnd(tessera, { templateId: 'no-chunks' });
      assert.equal(empty.state, 'JOB_STATE_COMPLETE', empty.errorMessage);
      const logs = await tessera.call('POST', '/v1/customer/logs', { jobId: empty.id });
      assert.match(JSON.stringify(logs.body.partitioner), /the partitioner wrote no chunks/);
    } finally {
      await tessera.stop();
      source.close();
    }
  });
});

const ROOT = process.getuid?.() === 0;

test('a full disk under an upload is RESOURCE_EXHAUSTED naming it, and the server serves on', { skip: ROOT ? false : 'needs root to mount a small tmpfs', timeout: 120_000 }, async () => {
  await withFreshDb('pglite', async (db) => {
    const home = mkdtempSync(path.join(tmpdir(), 'tessera-full-disk-'));
    const blobs = path.join(home, 'blobs');
    mkdirSync(blobs);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tessera-full', blobs], { encoding: 'utf8' });
    assert.equal(mounted.status, 0, mounted.stderr);
    const tessera = await startTestTessera(db, { home, workDir: path.join(home, 'work'), runtimeDir: path.join(home, 'runtime') });
    try {
      const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'file' } });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      const upload = await fetch(created.body.job.dataSource.params.tempUrl, { method: 'PUT', body: Buffer.alloc(4 * 2 ** 20, 'w'), headers: { 'content-disposition': 'attachment; filename="big.txt"' } });
      const body = (await upload.json()) as { code: number; message: string };
      assert.equal(upload.status, 507, JSON.stringify(body));
      assert.equal(body.code, 8);
      assert.match(body.message, new RegExp(`the blob folder ${blobs} is full \\(ENOSPC\\)`));
      // Still serving, and a small upload to the same folder fits.
      assert.equal((await fetch(`${tessera.url}/healthz`)).status, 200);
      const small = await fetch(created.body.job.dataSource.params.tempUrl, { method: 'PUT', body: 'a few words', headers: { 'content-disposition': 'attachment; filename="small.txt"' } });
      assert.equal(small.status, 200, await small.text());
    } finally {
      await tessera.stop();
      spawnSync('umount', [blobs]);
      rmSync(home, { recursive: true, force: true });
    }
  });
});
