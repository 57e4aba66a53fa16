import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiCaller } from '../helpers/cluster.js';
import { endedJob, installComponents, installTemplate, runToEnd } from '../helpers/components.js';
import { forEachEngine } from '../helpers/db.js';
import { checkResponse } from '../helpers/responses.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// The operator's API over HTTP: an account made with the operator key runs a job with the key it
// was answered; disabled, its key is refused and its running job aborted; enabled, it works
// again. Quotas: never more of its tasks on shared workers than maxSharedTasks at any sample of a
// 1,000-chunk job (and fewer once it is lowered), jobs per minute, stored bytes.

const SLEEPER_APP = 'import time\ntime.sleep(120)\n';
const NAP_APP = 'import time\ntime.sleep(0.01)\n';

forEachEngine('the operator makes an account, the account runs a job, and disabled it stops: key refused, running job aborted', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 2 });
  const operator = (method: string, route: string, body?: unknown) => tessera.call(method, route, body, tessera.operatorKey);
  try {
    // Each key only where it belongs.
    assert.equal((await tessera.call('GET', '/v1/operator/accounts')).status, 401, 'a customer key is no operator key');
    assert.equal((await tessera.call('GET', '/v1/customer/jobs', undefined, tessera.operatorKey)).status, 401, 'an operator key is no customer key');

    const made = await operator('POST', '/v1/operator/accounts', { name: 'team c', quotas: { maxJobsPerMinute: '100' } });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    checkResponse('post', '/v1/operator/accounts', made);
    const { accountId } = made.body.account;
    assert.equal(made.body.account.quotas.maxJobsPerMinute, 100);
    const team = apiCaller(tessera.url, made.body.apiKey);
    assert.equal((await team.call('GET', '/v1/auth/user')).body.accountId, accountId);
    const listed = await operator('GET', '/v1/operator/accounts');
    checkResponse('get', '/v1/operator/accounts', listed);
    assert.ok(listed.body.accounts.some((account: { accountId: string }) => account.accountId === accountId));
    assert.ok(!JSON.stringify(listed.body).includes(made.body.apiKey), 'the list never holds a key');
    assert.equal((await operator('GET', '/v1/operator/accounts/nosuch1')).status, 404);
    for (const bad of [{ quotas: { maxSharedTasks: -1 } }, { quotas: { maxStoredBytes: 'lots' } }, { quotas: { maxCats: 3 } }, { disabled: 'yes' }]) {
      const refused = await operator('PATCH', `/v1/operator/accounts/${accountId}`, bad);
      assert.equal(refused.status, 400, JSON.stringify(bad));
    }

    const done = await runToEnd(team, { templateId: 'noop', params: { partitioner: { chunks: 5 } } });
    assert.equal(done.state, 'JOB_STATE_COMPLETE', done.errorMessage);

    // A job that runs until it is stopped.
    await installComponents(team, [{ name: 'sleeper', type: 'app', entrypoint: 'main.py', code: SLEEPER_APP }]);
    await installTemplate(team, { id: 'sleeper', description: '', app: 'sleeper', partitioner: 'passthrough', assembler: 'passthrough' });
    const created = await team.call('POST', '/v1/customer/jobs', { templateId: 'sleeper' });
    const jobId = created.body.job.id as string;
    assert.equal((await team.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
    await waitFor('the sleeper to run', async () => (await db.query(`SELECT 1 FROM tasks WHERE job_id = $1 AND kind = 'app' AND state = 'leased'`, [jobId])).length > 0);

    const disabled = await operator('PATCH', `/v1/operator/accounts/${accountId}`, { disabled: true });
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    assert.equal(disabled.body.abortedJobs, 1);
    assert.ok(disabled.body.account.disabledAt);
    const refused = await team.call('GET', '/v1/customer/jobs');
    assert.equal(refused.status, 401);
    assert.match(refused.body.message, /this key's account was disabled at/);
    const [job] = await db.query<{ state: string; error_message: string }>('SELECT state, error_message FROM jobs WHERE id = $1', [jobId]);
    assert.deepEqual(job, { state: 'JOB_STATE_FAILED', error_message: 'aborted: the account was disabled by the operator' });
    // Its task is stopped (the slot kills it), not left running.
    await waitFor('the sleeper to be stopped', async () => (await db.query(`SELECT 1 FROM tasks WHERE job_id = $1 AND state IN ('leased', 'cancelling')`, [jobId])).length === 0, 30_000);

    assert.equal((await operator('PATCH', `/v1/operator/accounts/${accountId}`, { disabled: false })).status, 200);
    assert.equal((await team.call('GET', '/v1/customer/jobs')).status, 200, 'enabled again, its key works');
    // Other accounts never noticed.
    assert.equal((await tessera.call('GET', '/v1/customer/jobs')).status, 200);
  } finally {
    await tessera.stop();
  }
}, { timeout: 180_000 });

forEachEngine('quotas: shared tasks at once hold under a 1,000-chunk job (and a lowered quota lets running tasks finish), jobs per minute, stored bytes', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 8 });
  const operator = (method: string, route: string, body?: unknown) => tessera.call(method, route, body, tessera.operatorKey);
  try {
    const made = await operator('POST', '/v1/operator/accounts', { quotas: { maxSharedTasks: 3 } });
    const { accountId } = made.body.account;
    const team = apiCaller(tessera.url, made.body.apiKey);

    // A real process per chunk that naps a little, so that several are leased at once at any
    // sample (the built-in noop ends too quickly to be seen running).
    await installComponents(team, [{ name: 'nap', type: 'app', entrypoint: 'main.py', code: NAP_APP }]);
    await installTemplate(team, { id: 'naps', description: '', app: 'nap', partitioner: 'empty-chunks', assembler: 'passthrough', dataSource: { dataSourceDescriptor: 'bypass' } });
    const created = await team.call('POST', '/v1/customer/jobs', { templateId: 'naps', params: { partitioner: { chunks: 1000 } } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const jobId = created.body.job.id as string;
    const leasedNow = async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE account_id = $1 AND state = 'leased'`, [accountId]))[0]!.n;
    const progress = async () => (await db.query<{ done: number; state: string }>(`SELECT chunks_done AS done, state FROM jobs WHERE id = $1`, [jobId]))[0]!;
    const samples: number[] = [];
    let lowered = false;
    const afterLowering: number[] = [];
    assert.equal((await team.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const [leased, { done, state }] = [await leasedNow(), await progress()];
      (lowered ? afterLowering : samples).push(leased);
      if (!lowered && done >= 800) {
        const patched = await operator('PATCH', `/v1/operator/accounts/${accountId}`, { quotas: { maxSharedTasks: 1 } });
        assert.equal(patched.status, 200);
        lowered = true;
        // Tasks leased under the old quota finish; then no more than one runs.
        await waitFor('the tasks beyond the lowered quota to finish', async () => (await leasedNow()) <= 1, 30_000);
      }
      if (done >= 1000 || state === 'JOB_STATE_FAILED' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const job = await endedJob(team, jobId);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    assert.ok(samples.length > 20, `${samples.length} samples`);
    assert.ok(Math.max(...samples) <= 3, `at most 3 leased at any sample, saw ${Math.max(...samples)}`);
    assert.ok(Math.max(...samples) >= 2, `the quota was reached (most seen ${Math.max(...samples)})`);
    assert.ok(Math.max(...afterLowering) <= 1, `at most 1 leased once lowered, saw ${Math.max(...afterLowering)}`);
    // Every chunk ran once into the output.
    const [counted] = await db.query<{ n: number; twice: number }>(`SELECT count(*)::int AS n, count(*) FILTER (WHERE attempt > 1)::int AS twice FROM tasks WHERE job_id = $1 AND kind = 'app' AND state = 'succeeded'`, [jobId]);
    assert.equal(counted!.n, 1000);

    // Jobs per minute: two made just now, then with the quota at 2 the next is refused, naming it
    // (the 1,000-chunk job may or may not still be within the minute on a slow machine).
    for (let made = 0; made < 2; made++) assert.equal((await team.call('POST', '/v1/customer/jobs', { templateId: 'noop' })).status, 200);
    await operator('PATCH', `/v1/operator/accounts/${accountId}`, { quotas: { maxJobsPerMinute: 2, maxSharedTasks: null } });
    const third = await team.call('POST', '/v1/customer/jobs', { templateId: 'noop' });
    assert.equal(third.status, 429, JSON.stringify(third.body));
    assert.equal(third.body.code, 8);
    assert.match(third.body.message, /the account's quota maxJobsPerMinute = 2 is reached \([23] jobs made in the last minute\)/);
    const otherAccount = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'noop' });
    assert.equal(otherAccount.status, 200, 'another account is not limited');

    // Stored bytes: a job that stored results, then a quota below what is held.
    await operator('PATCH', `/v1/operator/accounts/${accountId}`, { quotas: { maxJobsPerMinute: null } });
    const source = http.createServer((_request, response) => response.end('one two two three three three\n'.repeat(200)));
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(source.address() as AddressInfo).port}/words.txt`;
      const counting = await runToEnd(team, { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url } } });
      assert.equal(counting.state, 'JOB_STATE_COMPLETE', counting.errorMessage);
    } finally {
      source.close();
    }
    const usage = (await operator('GET', `/v1/operator/accounts/${accountId}`)).body.account.usage;
    assert.ok(usage.storedBytes > 6000, `its chunks and results are counted: ${JSON.stringify(usage)}`);
    await operator('PATCH', `/v1/operator/accounts/${accountId}`, { quotas: { maxStoredBytes: String(Math.max(0, usage.storedBytes - 1)) } });
    const over = await team.call('POST', '/v1/customer/jobs', { templateId: 'noop' });
    assert.equal(over.status, 429, JSON.stringify(over.body));
    assert.match(over.body.message, /the account's quota maxStoredBytes = \d+ is reached \(\d+ bytes stored\)/);
  } finally {
    await tessera.stop();
  }
}, { timeout: 300_000 });
