import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createKey } from '../../src/engine/accounts.js';
import { silentLog } from '../../src/domain/log.js';
import { EMPTY_REPORT } from '../../src/domain/worker-link.js';
import { createHttpLink } from '../../src/worker/http-link.js';
import { startProcess, stopProcess } from '../helpers/cluster.js';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera, testWorker, waitFor } from '../helpers/tessera.js';

// Worker identity over real HTTP: a worker id is bound to the token it registered with, and a
// worker acts only as itself, on the leases handed to it. Worker A (its own token) holding worker
// B's lease tokens and id cannot complete, fail, heartbeat, release or re-register them; B's task
// is untouched and B finishes it. A revoked token stops its agent (a real `tessera worker`).

forEachEngine('a worker cannot act on another worker\'s leases or under its id; B\'s task is unaffected', async (db) => {
  const logs: string[] = [];
  const tessera = await startTestTessera(db, { workerSlots: 0 }, { logs });
  const scratch = mkdtempSync(path.join(tmpdir(), 'tessera-identity-'));
  try {
    const tokenA = (await createKey(db, { scope: 'worker' })).apiKey;
    const tokenB = (await createKey(db, { scope: 'worker' })).apiKey;
    const workerA = testWorker('worker-a');
    const workerB = testWorker('worker-b');
    const linkA = createHttpLink({ servers: [tessera.url], token: tokenA, worker: workerA, log: silentLog });
    const linkB = createHttpLink({ servers: [tessera.url], token: tokenB, worker: workerB, log: silentLog });
    await linkA.register();
    await linkB.register();

    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'noop', params: { partitioner: { chunks: 2 } } });
    const jobId = created.body.job.id as string;
    assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
    const [lease] = await waitFor('B to lease the partition', async () => {
      const leases = await linkB.lease(1, 1000);
      return leases.length > 0 ? leases : undefined;
    });
    assert.equal(lease!.kind, 'partition');
    const stolen = { taskId: lease!.taskId, leaseToken: lease!.leaseToken };

    // A, with B's lease token and id, as a hostile worker would send them.
    const as = (token: string, workerId: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-tessera-worker': workerId });
    const call = async (route: string, body: unknown, headers = as(tokenA, workerA.id), method = 'POST') => {
      const response = await fetch(`${tessera.url}${route}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: response.status, message: ((await response.json()) as { message: string }).message };
    };
    const task = `/v1/worker/tasks/${stolen.taskId}`;
    const notGiven = new RegExp(`the lease on task ${stolen.taskId} was not given to worker "${workerA.id}"`);
    const refusals: [string, { status: number; message: string }, RegExp][] = [
      ['complete', await call(`${task}/complete`, { leaseToken: stolen.leaseToken, outputs: [] }), notGiven],
      ['complete many', await call('/v1/worker/complete', { completions: [{ ...stolen, kind: 'partition', outputs: [] }] }), notGiven],
      ['fail', await call(`${task}/fail`, { leaseToken: stolen.leaseToken, error: 'forged', retry: false }), notGiven],
      ['stage', await call(`${task}/stage`, { leaseToken: stolen.leaseToken, state: 'JOB_STATE_FAILED' }), notGiven],
      ['stopped', await call(`${task}/stopped`, { leaseToken: stolen.leaseToken }), notGiven],
      ['source', await call(`${task}/source?leaseToken=${encodeURIComponent(stolen.leaseToken)}`, undefined, as(tokenA, workerA.id), 'GET'), notGiven],
      ['heartbeat', await call('/v1/worker/heartbeat', { workerId: workerA.id, leases: [stolen] }), notGiven],
      ['release', await call('/v1/worker/release', { workerId: workerA.id, leases: [stolen] }), notGiven],
      ['release as B', await call('/v1/worker/release', { workerId: workerB.id, leases: [], everything: true }), new RegExp(`worker "${workerA.id}" cannot act as worker "${workerB.id}"`)],
      ['B\'s id with A\'s token', await call('/v1/worker/release', { leases: [], everything: true }, as(tokenA, workerB.id)), new RegExp(`worker "${workerB.id}" is registered with another token`)],
      ['lease as B', await call('/v1/worker/lease', { max: 1 }, as(tokenA, workerB.id)), /registered with another token/],
      ['register as B', await call('/v1/worker/register', { ...workerB, name: 'impostor' }), new RegExp(`worker id "${workerB.id}" is registered with another token`)],
    ];
    for (const [what, answer, pattern] of refusals) {
      assert.equal(answer.status, 403, `${what}: ${answer.message}`);
      assert.match(answer.message, pattern, what);
    }
    // A call naming no worker, or one never registered, is refused too.
    assert.equal((await call('/v1/worker/heartbeat', { leases: [] }, { authorization: `Bearer ${tokenA}`, 'content-type': 'application/json' } as never)).status, 400);
    assert.equal((await call('/v1/worker/heartbeat', { leases: [] }, as(tokenA, 'never-registered'))).status, 404);
    // Every refusal is in the server's log, naming the worker that tried.
    const refused = logs.filter((line) => line.includes('worker call refused'));
    assert.ok(refused.length >= refusals.length, `${refused.length} refusals logged`);
    assert.ok(refused.every((line) => line.includes(workerA.id) || line.includes(workerB.id)));

    // B's task is as it was: still B's, under the same lease, and B finishes it.
    const [row] = await db.query<{ state: string; lease_owner: string; lease_token: string; attempt: number }>('SELECT state, lease_owner, lease_token, attempt FROM tasks WHERE id = $1', [stolen.taskId]);
    assert.deepEqual(row, { state: 'leased', lease_owner: workerB.id, lease_token: stolen.leaseToken, attempt: 1 });
    assert.deepEqual(await linkB.heartbeat([lease!]), []);
    await linkB.enterStage(lease!, 'JOB_STATE_UPLOADING');
    await linkB.enterStage(lease!, 'JOB_STATE_PARTITIONING');
    const files = [0, 1].map((chunk) => {
      const file = path.join(scratch, `data_${chunk}.bin`);
      writeFileSync(file, `chunk ${chunk}`);
      return { name: `data_${chunk}.bin`, path: file };
    });
    assert.equal(await linkB.complete(lease!, files, EMPTY_REPORT), true);
    const [job] = await db.query<{ num_chunks: number }>('SELECT num_chunks FROM jobs WHERE id = $1', [jobId]);
    assert.equal(job!.num_chunks, 2);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await tessera.stop();
  }
});

forEachEngine('a revoked worker token stops its agent with a message saying so', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-revoked-'));
  try {
    const made = await tessera.call('POST', '/v1/auth/keys', { scope: 'worker' });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    const agent = await startProcess(['worker', '--server', tessera.url, '--token', made.body.apiKey, '--slots', '1', '--json'], { TESSERA_HOME: home, TESSERA_LOG_LEVEL: 'warn', TESSERA_SANDBOX: 'off' });
    try {
      await waitFor('the agent to register', async () => (await db.query('SELECT 1 FROM workers WHERE id = $1', [agent.info.workerId])).length > 0, 30_000);
      const exited = new Promise<number | null>((resolve) => agent.child.once('exit', (code) => resolve(code)));
      assert.equal((await tessera.call('DELETE', `/v1/auth/keys/${made.body.key.id}`)).status, 200);
      // Its long poll ends at once, refused, and the agent stops.
      assert.equal(await exited, 2, agent.output());
      assert.match(agent.output(), /the servers refuse this worker: .*this key was revoked/);
      assert.match(agent.output(), /make a new one with `tessera key create --worker`/);
    } finally {
      await stopProcess(agent, 'SIGKILL');
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
    await tessera.stop();
  }
}, { timeout: 90_000 });
