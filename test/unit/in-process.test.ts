import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { inProcessName } from '../../src/domain/in-process.js';
import { runInProcess } from '../../src/worker/in-process.js';
import { componentArchive } from '../helpers/components.js';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// The in-process built-ins behind the `noop` template (what the benchmarks run): they keep the
// engine contract, run the whole task path, and cannot be claimed by a pushed component.

test('empty-chunks makes N empty chunks without files and refuses a bad count', async () => {
  const chunksDir = mkdtempSync(path.join(tmpdir(), 'in-process-'));
  try {
    const chunks = await runInProcess('empty-chunks', { CHUNKS_DIR: chunksDir, PARTITIONER_PARAMS: '{"chunks": 12}' });
    assert.deepEqual(chunks, Array.from({ length: 12 }, (_, index) => ({ name: `data_${index}.bin`, path: null })));
    assert.deepEqual(readdirSync(chunksDir), [], 'nothing is written');
    await assert.rejects(runInProcess('empty-chunks', { CHUNKS_DIR: chunksDir, PARTITIONER_PARAMS: '{"chunks": 0}' }), /chunks 0 must be a whole number from 1 to 1000000/);
    assert.equal(await runInProcess('noop', {}), undefined);
    assert.equal(inProcessName('tessera:noop'), 'noop');
    assert.equal(inProcessName('tessera:nothing'), undefined);
    assert.equal(inProcessName('main.py'), undefined);
  } finally {
    rmSync(chunksDir, { recursive: true, force: true });
  }
});

forEachEngine('the built-in noop template runs every chunk to COMPLETE; a pushed app cannot use an in-process entrypoint', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'noop', params: { partitioner: { chunks: 40 } } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const jobId = created.body.job.id;
    await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`, {});
    const job = await waitFor('the noop job to finish', async () => {
      const { body } = await tessera.call('GET', `/v1/customer/jobs/${jobId}`);
      return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(body.job.state) ? body.job : undefined;
    });
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    assert.equal(job.numChunks, 40);
    assert.equal(job.usage.tasksDone, 40);

    const pushed = await tessera.call('POST', '/v1/dev/apps', { data: await componentArchive({ name: 'sneaky', type: 'app', entrypoint: 'tessera:noop', code: '' }) });
    assert.equal(pushed.status, 400);
    assert.match(pushed.body.message, /entrypoints starting with "tessera:" are reserved for Tessera's built-ins/);
  } finally {
    await tessera.stop();
  }
});

forEachEngine('a fan-out of 1000 chunks or more refreshes the tasks table statistics, so leases walk the queue index; PARTITIONED is stamped once every task is queued', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    const reltuples = async () => Number((await db.query<{ n: number }>(`SELECT reltuples AS n FROM pg_class WHERE oid = 'tasks'::regclass`))[0]!.n);
    assert.ok((await reltuples()) < 1000, 'a fresh tasks table has no statistics yet');
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'noop', params: { partitioner: { chunks: 1200 } } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    await tessera.call('POST', `/v1/customer/jobs/${created.body.job.id}/run`, {});
    // ANALYZE runs after the partition commits, beside the leases: the planner then knows the
    // queue holds ~1200 rows (PGlite has no autovacuum; the server's would take a minute or more).
    const counted = await waitFor('the statistics to be refreshed', async () => ((await reltuples()) >= 1200 ? reltuples() : undefined));
    assert.ok(counted >= 1200 && counted <= 1300, `reltuples ${counted}`);
    const [state] = await db.query<{ values: string }>(`SELECT most_common_vals::text AS values FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'tasks' AND attname = 'state'`);
    assert.match(state?.values ?? '', /queued|leased|succeeded/, 'the state column has statistics');

    // The job's PARTITIONED time is when its tasks were all in the queue (the transition reads
    // the clock after the fan-out), not when the partition's transaction began.
    const job = await waitFor('the job to finish', async () => {
      const { body } = await tessera.call('GET', `/v1/customer/jobs/${created.body.job.id}`);
      return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(body.job.state) ? body.job : undefined;
    });
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    const [queued] = await db.query<{ first: Date; last: Date }>(`SELECT min(created_at) AS first, max(created_at) AS last FROM tasks WHERE job_id = $1 AND kind = 'app'`, [job.id]);
    const partitioned = Date.parse(job.stateTimestamps.JOB_STATE_PARTITIONED);
    assert.ok(queued!.last.getTime() <= partitioned, `the last task was queued at ${queued!.last.toISOString()}, after PARTITIONED (${job.stateTimestamps.JOB_STATE_PARTITIONED})`);
    assert.ok(Date.parse(job.stateTimestamps.JOB_STATE_PARTITIONING) <= queued!.first.getTime());
  } finally {
    await tessera.stop();
  }
});
