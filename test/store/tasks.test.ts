import assert from 'node:assert/strict';
import { insertAccount } from '../../src/store/accounts.js';
import type { Db } from '../../src/store/db.js';
import { insertJob } from '../../src/store/jobs.js';
import { migrate } from '../../src/store/migrate.js';
import {
  cancelJobTasks,
  completeTask,
  confirmTaskStopped,
  countTasksByState,
  expireCancellations,
  expireLeases,
  failTaskAttempt,
  hasCancellingTasks,
  heartbeatTasks,
  insertTasks,
  leaseTasks,
  listTaskOutputs,
  NO_NEEDS,
} from '../../src/store/tasks.js';
import type { TaskNeeds, WorkerOffer } from '../../src/store/tasks.js';
import { forEachEngine } from '../helpers/db.js';

// The task queue: SKIP LOCKED leasing, priority, fencing tokens, heartbeats, retries, expiry.

async function jobWithTasks(db: Db, jobId: string, count: number, priority = 0, maxAttempts = 2): Promise<void> {
  await migrate(db);
  await db.query(`INSERT INTO accounts (id) VALUES ('acct001') ON CONFLICT DO NOTHING`);
  await insertJob(db, {
    id: jobId, accountId: 'acct001', templateId: 't', name: '', description: '', priority: 'EXECUTION_PRIORITY_UNDEFINED', config: {}, regions: {},
    dataSource: { dataSourceDescriptor: 'bypass' }, dataDestination: { dataSourceDescriptor: 'bucket' }, params: {}, appId: 'a', startAt: null,
  });
  await insertTasks(db, jobId, 'app', Array.from({ length: count }, (_, chunkIndex) => ({ chunkIndex, inputKey: `k${chunkIndex}` })), { maxAttempts, priority });
}

forEachEngine('concurrent leasers never get the same task, and higher priority goes first', async (db, engine) => {
  await jobWithTasks(db, 'slow', 150, 1);
  await jobWithTasks(db, 'fast', 50, 3);
  assert.equal(await insertTasks(db, 'fast', 'app', [{ chunkIndex: 0 }, { chunkIndex: 1 }], { maxAttempts: 2, priority: 3 }), 0, 'a replayed fan-out adds nothing');
  const first = await leaseTasks(db, 'w0', 50, 30);
  assert.ok(first.every((task) => task.jobId === 'fast'), 'FAST before CHEAP');
  // Eight leasers at once over the pool (PGlite serialises them on its one connection).
  const batches = await Promise.all(Array.from({ length: 8 }, (_, worker) => leaseTasks(db, `w${worker + 1}`, 25, 30)));
  const all = [...first, ...batches.flat()];
  assert.equal(all.length, 200, `${engine}: every task leased`);
  assert.equal(new Set(all.map((task) => task.id)).size, 200, 'no task leased twice');
  assert.deepEqual(await leaseTasks(db, 'late', 10, 30), []);
  assert.equal((await countTasksByState(db, 'slow')).leased, 150);
});

forEachEngine('completion is fenced by the lease token', async (db) => {
  await jobWithTasks(db, 'J', 1);
  const [lease] = await leaseTasks(db, 'w1', 1, 30);
  assert.ok(lease);
  assert.equal(await completeTask(db, lease.id, 'not-the-token', []), null);
  // The lease expires and another worker takes the task: the first worker's token is dead.
  await db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [lease.id]);
  const expired = await expireLeases(db);
  assert.deepEqual(expired.map((attempt) => [attempt.taskId, attempt.retrying]), [[lease.id, true]]);
  const [second] = await leaseTasks(db, 'w2', 1, 30);
  assert.equal(second?.id, lease.id);
  assert.equal(second?.attempt, 2);
  assert.deepEqual(await heartbeatTasks(db, [{ id: lease.id, leaseToken: lease.leaseToken }], 30), [lease.id], 'the old holder learns it lost the lease');
  assert.deepEqual(await heartbeatTasks(db, [{ id: second!.id, leaseToken: second!.leaseToken }], 30), []);
  assert.equal(await completeTask(db, lease.id, lease.leaseToken, [{ name: 'late', blobKey: 'x', size: 1 }]), null, 'a late completion is ignored');
  assert.deepEqual(await completeTask(db, second!.id, second!.leaseToken, [{ name: 'out', blobKey: 'y', size: 2 }]), { jobId: 'J', kind: 'app', chunkIndex: 0 });
  assert.equal(await completeTask(db, second!.id, second!.leaseToken, []), null, 'and a task completes once');
  assert.deepEqual(await listTaskOutputs(db, 'J', 'app'), [{ chunkIndex: 0, outputs: [{ name: 'out', blobKey: 'y', size: 2 }] }]);
});

forEachEngine('failed attempts are retried until max_attempts, then the task fails', async (db) => {
  await jobWithTasks(db, 'J', 1, 0, 2);
  const [first] = await leaseTasks(db, 'w', 1, 30);
  const retry = await failTaskAttempt(db, first!.id, first!.leaseToken, 'boom', true);
  assert.equal(retry?.retrying, true);
  assert.equal(await failTaskAttempt(db, first!.id, first!.leaseToken, 'again', true), null, 'fenced like completion');
  const [second] = await leaseTasks(db, 'w', 1, 30);
  const last = await failTaskAttempt(db, second!.id, second!.leaseToken, 'boom', true);
  assert.deepEqual({ retrying: last?.retrying, attempt: last?.attempt }, { retrying: false, attempt: 2 });
  assert.equal((await countTasksByState(db, 'J')).failed, 1);
  assert.deepEqual(await leaseTasks(db, 'w', 1, 30), []);

  // No retry when the caller says it cannot help; an expired last attempt fails too.
  await insertTasks(db, 'J', 'app', [{ chunkIndex: 1 }, { chunkIndex: 2 }], { maxAttempts: 1, priority: 0 });
  const [one, two] = await leaseTasks(db, 'w', 2, 30);
  assert.equal((await failTaskAttempt(db, one!.id, one!.leaseToken, 'bad input', false))?.retrying, false);
  await db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [two!.id]);
  assert.deepEqual((await expireLeases(db)).map((attempt) => attempt.retrying), [false]);
});

forEachEngine('cancelling a job stops its queued and running tasks', async (db) => {
  await jobWithTasks(db, 'J', 4);
  const [running] = await leaseTasks(db, 'w', 1, 30);
  assert.equal(await cancelJobTasks(db, 'J'), 4);
  assert.deepEqual(await heartbeatTasks(db, [{ id: running!.id, leaseToken: running!.leaseToken }], 30), [running!.id]);
  assert.equal(await completeTask(db, running!.id, running!.leaseToken, []), null);
  assert.deepEqual(await leaseTasks(db, 'w', 10, 30), []);
  assert.deepEqual(await countTasksByState(db, 'J'), { queued: 0, leased: 0, succeeded: 0, failed: 0, cancelling: 1, cancelled: 3 });
  assert.equal(await hasCancellingTasks(db, 'J'), true, 'the running one stays cancelling until its worker confirms');
  assert.equal(await confirmTaskStopped(db, running!.id, 'wrong-token'), false);
  assert.equal(await confirmTaskStopped(db, running!.id, running!.leaseToken), true);
  assert.equal(await hasCancellingTasks(db, 'J'), false);

  // A worker that never confirms: the cancellation ends when its lease does.
  await insertTasks(db, 'J', 'app', [{ chunkIndex: 10 }], { maxAttempts: 1, priority: 0 });
  const [silent] = await leaseTasks(db, 'w', 1, 30);
  await cancelJobTasks(db, 'J');
  assert.equal(await expireCancellations(db), 0, 'not while the lease lasts');
  await db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [silent!.id]);
  assert.equal(await expireCancellations(db), 1);
  assert.equal(await hasCancellingTasks(db, 'J'), false);
});

forEachEngine('leasing matches regions, cores, memory and GPUs', async (db) => {
  await jobWithTasks(db, 'J', 0);
  const queue = (chunkIndex: number, needs: Partial<TaskNeeds>) => insertTasks(db, 'J', 'app', [{ chunkIndex }], { maxAttempts: 1, priority: 0, needs: { ...NO_NEEDS, ...needs } });
  await queue(0, { regionWhitelist: ['eu'] });
  await queue(1, { regionBlacklist: ['eu'] });
  await queue(2, { minCpu: 8 });
  await queue(3, { minMemoryGb: 64 });
  await queue(4, { gpus: ['a100', 'h100'] });
  await queue(5, {});
  const small: WorkerOffer = { region: 'eu', cpus: 2, memoryGb: 4, gpus: [] };
  const chunks = async (offer: WorkerOffer) => (await leaseTasks(db, 'w', 10, 30, offer)).map((task) => task.chunkIndex);
  assert.deepEqual(await chunks(small), [0, 5], 'a small eu worker gets the eu task and the one with no needs');
  assert.deepEqual(await chunks({ region: 'us', cpus: 2, memoryGb: 4, gpus: ['t4'] }), [1], 'us is not blacklisted; a t4 is not an accepted GPU');
  assert.deepEqual(await chunks({ region: 'us', cpus: 16, memoryGb: 128, gpus: ['h100'] }), [2, 3, 4]);
});
