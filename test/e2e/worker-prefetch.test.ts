import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { forEachEngine } from '../helpers/db.js';
import { installComponents, installTemplate } from '../helpers/components.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// A worker's default local queue ('auto'): one task leased ahead per slot while its tasks are
// short, none once one ran long, so a queue never holds long tasks back from other workers.

forEachEngine('a worker leases ahead while its tasks are short, and stops once one runs long', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 1 });
  try {
    await installComponents(tessera, [{ name: 'nap', type: 'app', entrypoint: 'main.py', code: 'import json, os, time\ntime.sleep(json.loads(os.environ["APP_PARAMS"])["seconds"])\n' }]);
    await installTemplate(tessera, { id: 'nap', description: '', app: 'nap', partitioner: 'empty-chunks', assembler: 'passthrough' });
    const count = async (jobId: string, state: string) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE job_id = $1 AND kind = 'app' AND state = $2`, [jobId, state]))[0]!.n;
    const run = async (chunks: number, seconds: number) => {
      const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'nap', params: { partitioner: { chunks }, app: { seconds } } });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      const jobId = created.body.job.id as string;
      assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
      return jobId;
    };
    const finished = async (jobId: string) => {
      const job = await waitFor(`job ${jobId} to finish`, async () => {
        const { body } = await tessera.call('GET', `/v1/customer/jobs/${jobId}`);
        return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(body.job.state) ? body.job : undefined;
      });
      assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    };

    // Short tasks on one slot: a second one is leased while the first runs.
    const short = await run(40, 0);
    let mostHeld = 0;
    await waitFor('a task leased ahead of the one running', async () => {
      mostHeld = Math.max(mostHeld, await count(short, 'leased'));
      return mostHeld >= 2 || (await count(short, 'succeeded')) === 40 ? true : undefined;
    });
    assert.equal(mostHeld, 2, 'one slot, one task running and one queued');
    await finished(short);

    // Tasks of a second each: once one of them has run, the slot leases only for itself.
    const long = await run(4, 1);
    await waitFor('the first long task to finish', async () => ((await count(long, 'succeeded')) >= 1 ? true : undefined));
    let heldAfter = 0;
    while ((await count(long, 'succeeded')) < 4) {
      heldAfter = Math.max(heldAfter, await count(long, 'leased'));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(heldAfter, 1, 'no task queued behind a long one');
    await finished(long);
  } finally {
    await tessera.stop();
  }
});

test('--prefetch takes auto or a whole number from 0 to 1000, and says so otherwise', () => {
  assert.equal(loadConfig({}, {}).workerPrefetch, 'auto');
  assert.equal(loadConfig({ prefetch: 'auto' }, {}).workerPrefetch, 'auto');
  assert.equal(loadConfig({}, { TESSERA_WORKER_PREFETCH: '40' }).workerPrefetch, 40);
  assert.equal(loadConfig({ prefetch: '0' }, {}).workerPrefetch, 0);
  for (const bad of ['1001', '-1', 'lots', '2.5']) {
    assert.throws(() => loadConfig({ prefetch: bad }, {}), (error: Error) => error.message.includes('--prefetch / TESSERA_WORKER_PREFETCH') && error.message.includes('expected auto or a whole number from 0 to 1000') && error.message.includes(bad));
  }
});
