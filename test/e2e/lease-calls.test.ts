import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createKey } from '../../src/engine/accounts.js';
import { silentLog } from '../../src/domain/log.js';
import { EMPTY_REPORT } from '../../src/domain/worker-link.js';
import type { TaskLease } from '../../src/domain/worker-link.js';
import type { HttpLink } from '../../src/worker/http-link.js';
import { createHttpLink } from '../../src/worker/http-link.js';
import { forEachEngine } from '../helpers/db.js';
import type { TestTessera } from '../helpers/tessera.js';
import { startTestTessera, testWorker, waitFor } from '../helpers/tessera.js';

// One lease call hands out the tasks of several jobs. What a job's tasks share (account,
// component, params) is looked up once per job and kind; a job whose tasks cannot run any more
// (it ended while they were still queued) has them failed at once, and the other jobs' leases in
// the same call are whole and unaffected.

/** noop jobs partitioned by hand, job i into `chunks[i]` empty chunks with app params `{label: labels[i]}`; their ids. */
async function partitionedJobs(tessera: TestTessera, link: HttpLink, scratch: string, jobs: { chunks: number; label: string }[]): Promise<string[]> {
  const ids: string[] = [];
  for (const { chunks, label } of jobs) {
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'noop', params: { partitioner: { chunks }, app: { label } } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    ids.push(created.body.job.id as string);
    assert.equal((await tessera.call('POST', `/v1/customer/jobs/${ids.at(-1)}/run`)).status, 200);
  }
  // Every partition leased before any completes: afterwards the app tasks come first in the queue.
  const partitions: TaskLease[] = [];
  await waitFor('the partition tasks', async () => (partitions.push(...(await link.lease(jobs.length - partitions.length, 1000))), partitions.length === jobs.length));
  for (const [index, jobId] of ids.entries()) {
    const partition = partitions.find((lease) => lease.jobId === jobId);
    assert.equal(partition?.kind, 'partition');
    await link.enterStage(partition, 'JOB_STATE_UPLOADING');
    await link.enterStage(partition, 'JOB_STATE_PARTITIONING');
    const files = Array.from({ length: jobs[index]!.chunks }, (_, chunk) => {
      const file = path.join(scratch, `${jobId}-${chunk}.bin`);
      writeFileSync(file, '');
      return { name: `data_${chunk}.bin`, path: file };
    });
    assert.equal(await link.complete(partition, files, EMPTY_REPORT), true);
  }
  return ids;
}

forEachEngine('a lease call over several jobs: each lease is whole, and the tasks of a job that ended are failed, not handed out', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  const scratch = mkdtempSync(path.join(tmpdir(), 'tessera-lease-calls-'));
  try {
    const token = (await createKey(db, { scope: 'worker' })).apiKey;
    const link = createHttpLink({ servers: [tessera.url], token, worker: testWorker('lease-calls'), log: silentLog });
    const [running, ended, other] = await partitionedJobs(tessera, link, scratch, [{ chunks: 3, label: 'running' }, { chunks: 2, label: 'ended' }, { chunks: 2, label: 'other' }]);
    // The race the lease guards against: a job that ended while its tasks were still queued (an
    // abort cancels them in its transaction, so only a job row changed behind the engine's back
    // gets here). The engine reads a job at most once a second; wait that out.
    await db.query(`UPDATE jobs SET state = 'JOB_STATE_FAILED', error_message = 'ended for the test' WHERE id = $1`, [ended]);
    await new Promise((resolve) => setTimeout(resolve, 1100));

    const leases: TaskLease[] = await link.lease(10, 1000);
    assert.deepEqual(leases.map((lease) => [lease.jobId, lease.kind, lease.chunkIndex]), [
      [running, 'app', 0], [running, 'app', 1], [running, 'app', 2], [other, 'app', 0], [other, 'app', 1],
    ]);
    for (const lease of leases) {
      assert.equal(lease.attempt, 1);
      assert.equal(lease.inputSize, 0);
      assert.equal(lease.component?.manifest.entrypoint, 'tessera:noop', JSON.stringify(lease.component));
      assert.deepEqual(lease.params, { label: lease.jobId === running ? 'running' : 'other' });
    }
    const failed = await db.query<{ chunk_index: number; state: string; last_error: string }>(
      `SELECT chunk_index, state, last_error FROM tasks WHERE job_id = $1 AND kind = 'app' ORDER BY chunk_index`, [ended]);
    assert.deepEqual(failed.map((task) => [task.chunk_index, task.state]), [[0, 'failed'], [1, 'failed']]);
    for (const task of failed) assert.match(task.last_error, new RegExp(`job ${ended} is no longer running`));
    assert.deepEqual(await link.lease(10, 200), [], 'nothing of the ended job is left to lease');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await tessera.stop();
  }
}, { timeout: 120_000 });
