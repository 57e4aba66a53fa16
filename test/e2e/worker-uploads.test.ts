import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createKey } from '../../src/engine/accounts.js';
import { encodeBundle } from '../../src/domain/file-bundle.js';
import { silentLog } from '../../src/domain/log.js';
import { EMPTY_REPORT } from '../../src/domain/worker-link.js';
import type { OutputFile } from '../../src/domain/worker-link.js';
import { createHttpLink } from '../../src/worker/http-link.js';
import { listJobEvents } from '../../src/store/jobs.js';
import { completeAppTasks } from '../../src/store/tasks.js';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera, testWorker, waitFor } from '../helpers/tessera.js';

// A worker agent's uploads over real HTTP: a partition's many small chunks travel in bundles
// (POST /v1/worker/tasks/{taskId}/files), larger files one by one, and every file lands under
// its lease's key byte for byte. A bundle that is broken, too large, or sent under a lease that
// is not current stores nothing.

forEachEngine('a partition of 600 files of mixed sizes is uploaded in bundles and recorded byte for byte; bad bundles are refused', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  const scratch = mkdtempSync(path.join(tmpdir(), 'tessera-bundles-'));
  try {
    const token = (await createKey(db, { scope: 'worker' })).apiKey;
    const worker = testWorker('bundles');
    const link = createHttpLink({ servers: [tessera.url], token, worker, log: silentLog });
    const headers = { authorization: `Bearer ${token}`, 'x-tessera-worker': worker.id };
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'noop', params: { partitioner: { chunks: 1 } } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const jobId = created.body.job.id as string;
    assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
    const [partition] = await waitFor('the partition task', async () => {
      const leases = await link.lease(1, 1000);
      return leases.length > 0 ? leases : undefined;
    });
    assert.equal(partition!.kind, 'partition');
    await link.enterStage(partition!, 'JOB_STATE_UPLOADING');
    await link.enterStage(partition!, 'JOB_STATE_PARTITIONING');

    // Empty, small and (every 97th) larger-than-bundled chunks: 600 files over three pages.
    const contents = Array.from({ length: 600 }, (_, index) => (index % 97 === 5 ? randomBytes(300 * 1024) : index % 3 === 0 ? Buffer.alloc(0) : randomBytes(index * 7)));
    const files: OutputFile[] = contents.map((bytes, index) => {
      const file = path.join(scratch, `data_${index}.bin`);
      writeFileSync(file, bytes);
      return { name: `data_${index}.bin`, path: file };
    });
    assert.equal(await link.complete(partition!, files, EMPTY_REPORT), true);
    assert.ok(files.every((file) => !existsSync(file.path!)), 'each uploaded file is removed from the task folder');
    // Three pages of up to 256 files: the small ones of each in one bundle, the seven larger ones alone.
    const metrics = (await tessera.call('GET', '/metrics', undefined, null)).body as string;
    const requests = (method: string, route: string) => Number(new RegExp(`tessera_http_request_duration_seconds_count\\{method="${method}",route="${route}",status="200"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    assert.equal(requests('POST', '/v1/worker/tasks/:taskId/files'), 3, metrics.split('\n').filter((line) => line.includes('/files')).join('\n'));
    assert.equal(requests('PUT', '/v1/worker/tasks/:taskId/files/:index'), 7);
    const job = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
    assert.equal(job.state, 'JOB_STATE_PARTITIONED');
    assert.equal(job.numChunks, 600);
    const chunks = await db.query<{ chunk_index: number; input_key: string; input_size: string }>(`SELECT chunk_index, input_key, input_size::text FROM tasks WHERE job_id = $1 AND kind = 'app' ORDER BY chunk_index`, [jobId]);
    assert.equal(chunks.length, 600);
    for (const chunk of chunks) {
      // An empty chunk is not uploaded and names no blob; the app task's worker makes the empty file.
      if (contents[chunk.chunk_index]!.length === 0) {
        assert.equal(chunk.input_key, null, `empty chunk ${chunk.chunk_index} has no blob`);
        assert.equal(await tessera.engine.deps.blobs.stat(`jobs/${jobId}/chunks/a1/data_${chunk.chunk_index}.bin`), null, `empty chunk ${chunk.chunk_index} was not stored`);
        assert.equal(Number(chunk.input_size), 0);
        continue;
      }
      const stored = await tessera.engine.deps.blobs.openRead(chunk.input_key);
      const parts: Buffer[] = [];
      for await (const part of stored.stream) parts.push(part as Buffer);
      assert.ok(Buffer.concat(parts).equals(contents[chunk.chunk_index]!), `chunk ${chunk.chunk_index} is stored byte for byte`);
      assert.equal(Number(chunk.input_size), contents[chunk.chunk_index]!.length);
    }

    // Bad bundles, under a current lease (an app task's) and not.
    const [app] = await link.lease(1, 1000);
    assert.ok(app);
    const post = (body: Buffer, leaseToken = app.leaseToken, contentType = 'application/octet-stream') =>
      fetch(`${tessera.url}/v1/worker/tasks/${app.taskId}/files?leaseToken=${encodeURIComponent(leaseToken)}`, { method: 'POST', headers: { ...headers, 'content-type': contentType }, body });
    const refused = async (response: Response, status: number, pattern: RegExp) => {
      const payload = (await response.json()) as { message: string };
      assert.equal(response.status, status, payload.message);
      assert.match(payload.message, pattern);
    };
    const good = encodeBundle([{ index: 0, name: 'a.txt', bytes: Buffer.from('first') }, { index: 1, name: 'b.txt', bytes: Buffer.from('second') }]);
    await refused(await post(good.subarray(0, good.length - 2)), 400, /file 1 of the bundle .*the body ends early/);
    await refused(await post(good, 'not-the-token'), 403, /the lease on task \d+ was not given to worker "bundles/);
    await refused(await post(Buffer.from('{"files": []}'), app.leaseToken, 'application/json'), 400, /send the bundle as application\/octet-stream/);
    await refused(await post(Buffer.alloc(16 * 1024 * 1024 + 1)), 429, /larger than 16777216 bytes/);
    const resultsPrefix = `jobs/${jobId}/results/${app.chunkIndex}`;
    assert.equal(await tessera.engine.deps.blobs.stat(`${resultsPrefix}/a1/0-a.txt`), null, 'a refused bundle stores nothing');
    const accepted = await post(good);
    assert.equal(accepted.status, 200);
    assert.deepEqual(await accepted.json(), { stored: [{ index: 0, blobKey: `${resultsPrefix}/a1/0-a.txt` }, { index: 1, blobKey: `${resultsPrefix}/a1/1-b.txt` }] });

    // The completion checks every output is stored under this lease: one that is not names itself.
    const complete = async (outputs: { name: string; blobKey: string | null }[]) => {
      const response = await fetch(`${tessera.url}/v1/worker/complete`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ completions: [{ taskId: app.taskId, leaseToken: app.leaseToken, kind: 'app', outputs }] }) });
      return ((await response.json()) as { results: { completed: boolean; error?: string }[] }).results[0]!;
    };
    const missing = await complete([{ name: 'a.txt', blobKey: `${resultsPrefix}/a1/0-a.txt` }, { name: 'c.txt', blobKey: `${resultsPrefix}/a1/1-c.txt` }]);
    assert.equal(missing.completed, false);
    assert.match(missing.error ?? '', /output "c.txt" was not uploaded under this lease as file 1/);
    // Only a partition's empty chunks may come without a blob.
    const unnamed = await complete([{ name: 'a.txt', blobKey: `${resultsPrefix}/a1/0-a.txt` }, { name: 'b.txt', blobKey: null }]);
    assert.equal(unnamed.completed, false);
    assert.match(unnamed.error ?? '', /output "b.txt" has no blob key: only a partition's empty chunks may be left out of the upload/);
    assert.deepEqual(await complete([{ name: 'a.txt', blobKey: `${resultsPrefix}/a1/0-a.txt` }, { name: 'b.txt', blobKey: `${resultsPrefix}/a1/1-b.txt` }]), { completed: true });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await tessera.stop();
  }
}, { timeout: 120_000 });

forEachEngine('a job whose chunks were all counted done but whose app phase was left open (its server stopped in between) is closed by the sweep, once', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  try {
    const token = (await createKey(db, { scope: 'worker' })).apiKey;
    const link = createHttpLink({ servers: [tessera.url], token, worker: testWorker('left-open'), log: silentLog });
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'noop', params: { partitioner: { chunks: 3 } } });
    const jobId = created.body.job.id as string;
    assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
    const [partition] = await waitFor('the partition task', async () => {
      const leases = await link.lease(1, 1000);
      return leases.length > 0 ? leases : undefined;
    });
    await link.enterStage(partition!, 'JOB_STATE_UPLOADING');
    await link.enterStage(partition!, 'JOB_STATE_PARTITIONING');
    // Empty chunks without files, over HTTP: nothing is uploaded, nothing is stored.
    assert.equal(await link.complete(partition!, [0, 1, 2].map((index) => ({ name: `data_${index}.bin`, path: null })), EMPTY_REPORT), true);
    const apps = await link.lease(3, 1000);
    assert.deepEqual(apps.map((lease) => [lease.kind, lease.inputKey, lease.inputSize]), [['app', null, 0], ['app', null, 0], ['app', null, 0]]);

    // The completions commit and count, and nothing closes the phase (as if the server stopped there).
    const counted = await completeAppTasks(db, apps.map((lease) => ({ taskId: lease.taskId, leaseToken: lease.leaseToken, outputs: [] })));
    assert.deepEqual(counted.jobs, [{ jobId, chunksDone: 3, numChunks: 3 }]);
    assert.equal((await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job.state, 'JOB_STATE_PARTITIONED');

    await tessera.engine.scheduler.sweep();
    assert.equal((await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job.state, 'JOB_STATE_TASKS_COMPLETED');
    await tessera.engine.scheduler.sweep();
    assert.equal(await tessera.engine.flow.finishAppPhase(jobId), false, 'closed already: nothing to do');
    const assemble = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE job_id = $1 AND kind = 'assemble'`, [jobId]);
    assert.equal(assemble[0]!.n, 1, 'one assemble task, however many times the phase is closed');
    const events = (await listJobEvents(db, jobId)).filter((event) => event.state === 'JOB_STATE_TASKS_COMPLETED');
    assert.equal(events.length, 1);
  } finally {
    await tessera.stop();
  }
});
