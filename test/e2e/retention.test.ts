import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withFreshDb } from '../helpers/db.js';
import { installComponents, installTemplate, runToEnd } from '../helpers/components.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// Rows do not stay forever: a finished job's task rows, log lines and events go after the task-row
// retention (its counts, usage, timestamps, state changes and results stay), the job itself after
// its own, and none of it disturbs a job that is running.

const SLOW_APP = 'import os, time\nprint("working on", os.environ["CHUNK_NUMBER"])\ntime.sleep(1.5)\nopen(os.path.join(os.environ["TASK_RESULTS_DIR"], "done.txt"), "w").write(os.environ["CHUNK_NUMBER"])\n';

test('finished rows are deleted after their retention, in batches, while another job runs undisturbed', { timeout: 180_000 }, async () => {
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db, { taskRowRetentionSeconds: 1, jobRetentionSeconds: 2, retentionSeconds: 2 });
    try {
      const count = async (table: string, jobId: string, extra = '') => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE job_id = $1 ${extra}`, [jobId]))[0]!.n;
      await installComponents(tessera, [{ name: 'slow', type: 'app', entrypoint: 'main.py', code: SLOW_APP }]);
      await installTemplate(tessera, { id: 'slow', description: '', app: 'slow', partitioner: 'empty-chunks', assembler: 'passthrough' });

      const done = await runToEnd(tessera, { templateId: 'slow', params: { partitioner: { chunks: 4 } } });
      assert.equal(done.state, 'JOB_STATE_COMPLETE', done.errorMessage);
      assert.equal(await count('tasks', done.id), 6);
      assert.ok((await count('task_logs', done.id)) >= 4);

      // Another job runs meanwhile.
      const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'slow', params: { partitioner: { chunks: 6 } } });
      const running = created.body.job.id as string;
      await tessera.call('POST', `/v1/customer/jobs/${running}/run`);
      await waitFor('the second job to run', async () => (await count('tasks', running, "AND kind = 'app'")) === 6);

      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const pass = await tessera.engine.scheduler.retainRows();
      assert.ok(pass && pass.jobsCompacted >= 1, JSON.stringify(pass));
      // The finished job keeps its assembler's row (its results), its state changes and its own row.
      assert.equal(await count('tasks', done.id), 1);
      assert.equal(await count('task_logs', done.id), 0);
      assert.equal(await count('job_events', done.id, "AND kind <> 'state'"), 0);
      assert.ok((await count('job_events', done.id, "AND kind = 'state'")) >= 9);
      const kept = (await tessera.call('GET', `/v1/customer/jobs/${done.id}`)).body.job;
      assert.equal(kept.state, 'JOB_STATE_COMPLETE');
      assert.equal(kept.numChunks, 4);
      assert.ok(kept.stateTimestamps.JOB_STATE_COMPLETE);
      assert.equal((await tessera.call('GET', `/v1/customer/jobs/${done.id}/results`)).body.results.length, 4);

      // The running job was not touched, and completes exactly.
      const second = await waitFor('the second job to end', async () => {
        const job = (await tessera.call('GET', `/v1/customer/jobs/${running}`)).body.job;
        return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(job.state) ? job : undefined;
      }, 120_000);
      assert.equal(second.state, 'JOB_STATE_COMPLETE', second.errorMessage);
      assert.equal((await tessera.call('GET', `/v1/customer/jobs/${running}/results`)).body.results.length, 6);

      // Past the job's own retention, once its temporary storage is gone, the job goes too.
      tessera.engine.deliveries.retentionDue();
      tessera.engine.deliveries.kick();
      await waitFor('the first job\'s storage to be deleted', async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs WHERE id = $1 AND blobs_deleted_at IS NOT NULL', [done.id]))[0]!.n === 1, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      const later = await tessera.engine.scheduler.retainRows();
      assert.ok(later && later.jobsDeleted >= 1, JSON.stringify(later));
      assert.equal((await tessera.call('GET', `/v1/customer/jobs/${done.id}`)).status, 404);
      assert.equal(await count('tasks', done.id), 0);
      assert.equal(await count('job_events', done.id), 0);
    } finally {
      await tessera.stop();
    }
  });
});
