import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Process } from '../helpers/cluster.js';
import { apiCaller, startProcess, stopProcess } from '../helpers/cluster.js';
import type { ApiCaller } from '../helpers/components.js';
import { runToEnd } from '../helpers/components.js';
import { forEachEngine } from '../helpers/db.js';
import { checkResponse } from '../helpers/responses.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// Private worker pools with real `tessera worker` agents: account B's own worker serves only B.
// With no shared worker, B's job runs and A's fails after the grace period naming the pool it
// lacks; A never sees B's worker, the operator sees every worker. Then a shared worker (the
// operator's token) serves A, except A's jobs that ask for their own pool only.

const NOOP = (chunks: number, config: Record<string, unknown> = {}) => ({ templateId: 'noop', params: { partitioner: { chunks } }, config });

async function startAgent(url: string, token: string, home: string): Promise<Process> {
  return startProcess(['worker', '--server', url, '--token', token, '--slots', '2', '--json'], { TESSERA_HOME: home, TESSERA_LOG_LEVEL: 'info', TESSERA_SANDBOX: 'off' });
}

async function workerIds(api: ApiCaller): Promise<string[]> {
  const answer = await api.call('GET', '/v1/customer/workers');
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.data.map((worker: { id: string }) => worker.id);
}

forEachEngine('a private worker serves only its account; a shared one serves every account but a job asking for its own pool', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 0, unservedGraceSeconds: 2 });
  const operator = apiCaller(tessera.url, tessera.operatorKey);
  const teamA = apiCaller(tessera.url, tessera.apiKey);
  const homes = [mkdtempSync(path.join(tmpdir(), 'tessera-pool-b-')), mkdtempSync(path.join(tmpdir(), 'tessera-pool-shared-'))];
  let agentB: Process | undefined;
  let shared: Process | undefined;
  try {
    const made = await operator.call('POST', '/v1/operator/accounts', { name: 'team b' });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    const teamB = apiCaller(tessera.url, made.body.apiKey);
    const tokenB = await teamB.call('POST', '/v1/auth/keys', { scope: 'worker' });
    assert.equal(tokenB.status, 200, JSON.stringify(tokenB.body));
    agentB = await startAgent(tessera.url, tokenB.body.apiKey, homes[0]!);
    const idB = agentB.info.workerId as string;
    await waitFor('B\'s worker to register', async () => (await workerIds(teamB)).includes(idB), 30_000);
    // Its log line may trail its registration by a moment.
    await waitFor('B\'s worker to say which pool it serves', async () => /serving the private pool of account /.test(agentB!.output()), 10_000);

    // B's jobs run on B's worker, whether or not they ask for their own pool.
    for (const config of [{}, { workerPool: 'WORKER_POOL_PRIVATE' }]) {
      const job = await runToEnd(teamB, NOOP(3, config));
      assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    }
    // A's job waits, then fails naming what it lacks; B's worker never leased any of A's tasks.
    const waited = await runToEnd(teamA, NOOP(2));
    assert.equal(waited.state, 'JOB_STATE_FAILED');
    assert.match(waited.errorMessage, /no connected worker can run the partitioner: it needs a worker of the shared pool or of the account's own pool,/);
    const [aTasks] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks WHERE job_id = $1 AND lease_owner IS NOT NULL', [waited.id]);
    assert.equal(aTasks!.n, 0, 'B\'s worker leased none of A\'s tasks');

    // Who sees the worker: its account and the operator; A sees only that a shared fleet is empty.
    assert.ok(!(await workerIds(teamA)).includes(idB), 'A never sees B\'s worker');
    const seenByA = await teamA.call('GET', '/v1/customer/workers');
    checkResponse('get', '/v1/customer/workers', seenByA);
    assert.ok(!JSON.stringify(seenByA.body).includes(idB));
    const everyWorker = await operator.call('GET', '/v1/operator/workers');
    assert.equal(everyWorker.status, 200);
    checkResponse('get', '/v1/operator/workers', everyWorker);
    assert.ok(everyWorker.body.data.some((worker: { id: string }) => worker.id === idB));

    // A shared worker (a token the operator made) serves A now, but not a job of A asking for its own pool.
    const sharedToken = await operator.call('POST', '/v1/operator/keys', { scope: 'worker' });
    assert.equal(sharedToken.status, 200, JSON.stringify(sharedToken.body));
    shared = await startAgent(tessera.url, sharedToken.body.apiKey, homes[1]!);
    await waitFor('the shared worker to register', async () => (await operator.call('GET', '/v1/operator/workers')).body.data.some((worker: { id: string }) => worker.id === shared!.info.workerId), 30_000);
    await waitFor('the shared worker to say which pool it serves', async () => /serving the shared pool/.test(shared!.output()), 10_000);
    assert.ok(!(await workerIds(teamA)).includes(shared.info.workerId), 'the shared fleet is not listed by name to customers');
    assert.equal((await teamA.call('GET', '/v1/customer/workers')).body.shared.workers, 1);

    const served = await runToEnd(teamA, NOOP(4));
    assert.equal(served.state, 'JOB_STATE_COMPLETE', served.errorMessage);
    const owners = await db.query<{ lease_owner: string }>('SELECT DISTINCT lease_owner FROM tasks WHERE job_id = $1', [served.id]);
    assert.deepEqual(owners.map((row) => row.lease_owner), [shared.info.workerId]);
    const ownPoolOnly = await runToEnd(teamA, NOOP(2, { workerPool: 'WORKER_POOL_PRIVATE' }));
    assert.equal(ownPoolOnly.state, 'JOB_STATE_FAILED');
    assert.match(ownPoolOnly.errorMessage, /a worker of the account's own pool \(its config.workerPool is WORKER_POOL_PRIVATE/);
  } finally {
    await stopProcess(agentB);
    await stopProcess(shared);
    for (const home of homes) rmSync(home, { recursive: true, force: true });
    await tessera.stop();
  }
}, { timeout: 180_000 });
