import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import type { Db, Queryable } from '../../src/store/db.js';
import { insertJob } from '../../src/store/jobs.js';
import { listWorkers } from '../../src/store/stats.js';
import { listUnservedTasks } from '../../src/store/workers.js';
import {
  analyzeTasks,
  cancelJobTasks,
  completeTask,
  completeAppTasks,
  confirmTaskStopped,
  countTasksByState,
  expireCancellations,
  expireLeases,
  failTaskAttempt,
  findLease,
  findLeases,
  hasCancellingTasks,
  heartbeatTasks,
  insertTasks,
  isTaskLeaseCurrent,
  leaseTasks,
  sharedQuotaRoom,
  listTaskOutputs,
  NO_NEEDS,
  releaseOwnedTasks,
  releaseTasks,
  vacuumTasks,
} from '../../src/store/tasks.js';
import type { LeasedTask, TaskNeeds, WorkerOffer } from '../../src/store/tasks.js';
import { forEachEngine } from '../helpers/db.js';
import { likePatterns } from '../../src/domain/images.js';

// The task queue: SKIP LOCKED leasing, priority, fencing tokens, heartbeats, retries, expiry.

/** A job with `count` queued app tasks (chunks 0…count-1). The database is already migrated. */
async function jobWithTasks(db: Db, jobId: string, count: number, priority = 0, maxAttempts = 2): Promise<void> {
  await db.query(`INSERT INTO accounts (id) VALUES ('acct001') ON CONFLICT DO NOTHING`);
  await insertJob(db, {
    id: jobId, accountId: 'acct001', templateId: 't', name: '', description: '', priority: 'EXECUTION_PRIORITY_UNDEFINED', config: {}, regions: {},
    dataSource: { dataSourceDescriptor: 'bypass' }, dataDestination: { dataSourceDescriptor: 'bucket' }, params: {}, appId: 'a', startAt: null,
  });
  await insertTasks(db, jobId, 'app', Array.from({ length: count }, (_, chunkIndex) => ({ chunkIndex, inputKey: `k${chunkIndex}` })), { maxAttempts, priority });
}

/** A plan node of EXPLAIN (FORMAT JSON), with the fields read below. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/**
 * What the statements `call` makes read of the tasks table, from their plans as they ran
 * (EXPLAIN ANALYZE, in a transaction rolled back afterwards): its sequential scans, and the rows
 * its scans produced or filtered out. The same on both engines, and about these statements only
 * (counters read by table name found another test schema's `tasks` on the PostgreSQL server).
 */
async function tasksRead(db: Db, call: (explaining: Queryable) => Promise<unknown>): Promise<{ seqScans: number; rows: number }> {
  const read = { seqScans: 0, rows: 0 };
  const visit = (node: PlanNode): void => {
    if (node['Relation Name'] === 'tasks' && /Scan/.test(node['Node Type'])) {
      if (node['Node Type'] === 'Seq Scan') read.seqScans++;
      read.rows += (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) * node['Actual Loops'];
    }
    for (const child of node.Plans ?? []) visit(child);
  };
  const rolledBack = new Error('rolled back');
  await db.transaction(async (tx) => {
    await call({
      query: async (sql, params) => {
        const [row] = await tx.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
        visit(row!['QUERY PLAN'][0].Plan);
        return [];
      },
      exec: (sql) => tx.exec(sql),
    });
    throw rolledBack;
  }).catch((error: unknown) => {
    if (error !== rolledBack) throw error;
  });
  return read;
}

const migrated = { migrated: true };

forEachEngine('concurrent leasers never get the same task, and higher priority goes first', async (db, engine) => {
  await jobWithTasks(db, 'slow', 150, 1);
  await jobWithTasks(db, 'fast', 50, 3);
  assert.equal(await insertTasks(db, 'fast', 'app', [{ chunkIndex: 0 }, { chunkIndex: 1 }], { maxAttempts: 2, priority: 3 }), 0, 'a replayed fan-out adds nothing');
  const first = await leaseTasks(db, 'w0', 50, 30);
  assert.equal(first.length, 50);
  assert.ok(first.every((task) => task.jobId === 'fast'), 'FAST before CHEAP');

  // Eight leasers at once over the pool (PGlite serialises them on its one connection), each
  // taking small batches until it finds nothing: many overlapping SKIP LOCKED scans of one queue.
  const leaseUntilEmpty = async (owner: string): Promise<LeasedTask[]> => {
    const mine: LeasedTask[] = [];
    for (;;) {
      const batch = await leaseTasks(db, owner, 7, 30);
      if (batch.length === 0) return mine;
      mine.push(...batch);
    }
  };
  const owners = Array.from({ length: 8 }, (_, worker) => `w${worker + 1}`);
  const byOwner = await Promise.all(owners.map(leaseUntilEmpty));
  const all = [...first, ...byOwner.flat()];
  assert.equal(all.length, 200, `${engine}: every task leased`);
  assert.equal(new Set(all.map((task) => task.id)).size, 200, 'no task leased twice');
  // The row agrees with what each leaser was told: no later lease overwrote an earlier one.
  const ownerOf = new Map<number, string>(first.map((task) => [task.id, 'w0']));
  byOwner.forEach((tasks, index) => tasks.forEach((task) => ownerOf.set(task.id, owners[index]!)));
  const rows = await db.query<{ id: string; lease_owner: string; attempt: number }>('SELECT id, lease_owner, attempt FROM tasks');
  assert.ok(rows.every((row) => ownerOf.get(Number(row.id)) === row.lease_owner && row.attempt === 1));
  assert.deepEqual(await leaseTasks(db, 'late', 10, 30), []);
  assert.equal((await countTasksByState(db, 'slow')).leased, 150);
}, migrated);

forEachEngine('a lease of 1,000 tasks looks up the queue and the rows it takes, never a scan of every task ever run, with the statistics Tessera keeps', async (db) => {
  await jobWithTasks(db, 'DONE', 0);
  await db.query(
    `INSERT INTO tasks (job_id, kind, chunk_index, state, finished_at)
     SELECT 'DONE', 'app', i, 'succeeded', now() FROM generate_series(0, 19999) AS i`,
  );
  await jobWithTasks(db, 'J', 20_000);
  // What the server runs after a big fan-out, and a worker's lease with what it offers: the
  // planner needs to know that the needs columns match nearly every row, or it estimates one
  // row and sorts the whole queue (145 ms a lease of 100,000 queued; measured).
  await analyzeTasks(db);
  const analyzed = await db.query<{ attname: string }>(`SELECT attname FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'tasks' ORDER BY attname`);
  const needed = ['gpus', 'image', 'job_id', 'kind', 'min_cpu', 'min_memory_gb', 'priority', 'region_blacklist', 'region_whitelist', 'state'];
  assert.deepEqual(needed.filter((column) => !analyzed.some((row) => row.attname === column)), [], 'every column the lease filters or sorts on has statistics');
  const offer = { region: 'eu-west', cpus: 2, memoryGb: 8, gpus: [], containers: false, hostImages: [] };
  const reads = await tasksRead(db, async (explaining) => {
    await leaseTasks(explaining, 'w1', 1000, 30);
    await leaseTasks(explaining, 'w2', 1000, 30, offer);
  });
  assert.equal(reads.seqScans, 0, 'no sequential scan of the tasks table');
  // Each lease reads its 1,000 rows from the queue and looks each up once. Without the statistics
  // refresh (analyzeTasks a no-op), both leases read all 41,000 rows through an index: no
  // sequential scan, so only this bound catches it (checked).
  assert.ok(reads.rows <= 2 * 2000 + 10, `two leases of 1,000 read ${reads.rows} task rows`);
  const leased = [...(await leaseTasks(db, 'w1', 1000, 30)), ...(await leaseTasks(db, 'w2', 1000, 30, offer))];
  assert.deepEqual(leased.map((task) => task.chunkIndex), Array.from({ length: 2000 }, (_, index) => index));
}, migrated);

forEachEngine('completion is fenced by the lease token', async (db) => {
  await jobWithTasks(db, 'J', 1);
  const [lease] = await leaseTasks(db, 'w1', 1, 30);
  assert.ok(lease);
  assert.equal(await completeTask(db, lease.id, 'not-the-token', []), null);
  // The lease expires and another worker takes the task: the first worker's token is dead.
  await db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [lease.id]);
  const expired = await expireLeases(db, 10);
  assert.deepEqual(expired.map((attempt) => [attempt.taskId, attempt.retrying]), [[lease.id, true]]);
  const [second] = await leaseTasks(db, 'w2', 1, 30);
  assert.equal(second?.id, lease.id);
  assert.equal(second?.attempt, 2);
  assert.deepEqual(await heartbeatTasks(db, [{ id: lease.id, leaseToken: lease.leaseToken }], 30), [lease.id], 'the old holder learns it lost the lease');
  assert.deepEqual(await heartbeatTasks(db, [{ id: second!.id, leaseToken: second!.leaseToken }], 30), []);
  // The list comes from a worker over HTTP: a task listed twice is still one held lease, not an error.
  const twice = { id: second!.id, leaseToken: second!.leaseToken };
  assert.deepEqual(await heartbeatTasks(db, [twice, twice], 30), []);
  assert.equal(await completeTask(db, lease.id, lease.leaseToken, [{ name: 'late', blobKey: 'x', size: 1 }]), null, 'a late completion is ignored');
  assert.deepEqual(await completeTask(db, second!.id, second!.leaseToken, [{ name: 'out', blobKey: 'y', size: 2 }]), { jobId: 'J', kind: 'app', chunkIndex: 0 });
  assert.equal(await completeTask(db, second!.id, second!.leaseToken, []), null, 'and a task completes once');
  // A heartbeat that crosses the completion: done under this lease is not lost; under the old one it is.
  assert.deepEqual(await heartbeatTasks(db, [{ id: second!.id, leaseToken: second!.leaseToken }], 30), []);
  assert.deepEqual(await heartbeatTasks(db, [{ id: lease.id, leaseToken: lease.leaseToken }], 30), [lease.id]);
  assert.deepEqual(await listTaskOutputs(db, 'J', 'app'), [{ chunkIndex: 0, outputs: [{ name: 'out', blobKey: 'y', size: 2 }] }]);
}, migrated);

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
  // A lease lost with its worker costs no attempt: the task's only attempt runs again…
  const expire = async (leaseId: number) => {
    await db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [leaseId]);
    return (await expireLeases(db, 2)).map((attempt) => [attempt.retrying, attempt.lost, attempt.lostLeases, attempt.maxAttempts]);
  };
  assert.deepEqual(await expire(two!.id), [[true, true, 1, 2]]);
  // …until it was lost as often as allowed (2 here): then it fails.
  const [again] = await leaseTasks(db, 'w', 1, 30);
  assert.equal(again?.id, two!.id);
  assert.deepEqual(await expire(again!.id), [[false, true, 2, 3]]);
  // A worker stopped under its task reports it lost: no attempt counted either.
  await insertTasks(db, 'J', 'app', [{ chunkIndex: 3 }], { maxAttempts: 1, priority: 0 });
  const [three] = await leaseTasks(db, 'w', 1, 30);
  const stopped = await failTaskAttempt(db, three!.id, three!.leaseToken, 'the worker running it was stopped', true, true, 2);
  assert.deepEqual([stopped?.retrying, stopped?.lost, stopped?.lostLeases], [true, true, 1]);
}, migrated);

forEachEngine('a failed attempt is retried after a jittered, capped, growing back-off; a lost lease at once', async (db) => {
  await jobWithTasks(db, 'J', 1, 0, 5);
  const backoff = { baseSeconds: 10, maxSeconds: 15 };
  const dueNow = (taskId: number) => db.query(`UPDATE tasks SET not_before = now() WHERE id = $1`, [taskId]);
  const waits: number[] = [];
  for (let failure = 1; failure <= 3; failure++) {
    const [lease] = await leaseTasks(db, 'w', 1, 30);
    assert.ok(lease, `the retry is leased once due (failure ${failure})`);
    const failed = await failTaskAttempt(db, lease.id, lease.leaseToken, 'flaky', true, false, 10, backoff);
    assert.equal(failed?.retrying, true);
    waits.push(failed!.backoffSeconds);
    assert.deepEqual(await leaseTasks(db, 'w', 1, 30), [], 'not leased while it waits out its back-off');
    assert.deepEqual(await listUnservedTasks(db, 0, 60), [], 'waiting out a back-off is not waiting for a worker');
    await dueNow(lease.id);
  }
  // 10 s, 20 s and 40 s capped at 15 s, each within ±20%.
  for (const [index, nominal] of [10, 15, 15].entries()) {
    assert.ok(waits[index]! >= nominal * 0.8 - 0.01 && waits[index]! <= nominal * 1.2 + 0.01, `wait ${index + 1}: ${waits[index]} s, expected ${nominal} s ± 20%`);
  }
  // A lease lost with its worker, expired or reported, is queued due at once.
  const [held] = await leaseTasks(db, 'w', 1, 30);
  const lost = await failTaskAttempt(db, held!.id, held!.leaseToken, 'the worker running it was stopped', true, true, 10, backoff);
  assert.deepEqual([lost?.retrying, lost?.backoffSeconds], [true, 0]);
  const [again] = await leaseTasks(db, 'w', 1, 30);
  assert.equal(again?.id, held!.id, 'leased again at once');
  await db.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [again!.id]);
  assert.equal((await expireLeases(db, 10))[0]?.backoffSeconds, 0);
  assert.equal((await leaseTasks(db, 'w', 1, 30))[0]?.id, held!.id);
  // Without a back-off (TESSERA_RETRY_BACKOFF_SECONDS=0) a retry is due at once.
  const [last] = await db.query<{ id: number }>(`SELECT id FROM tasks WHERE state = 'leased'`);
  const immediate = await failTaskAttempt(db, Number(last!.id), (await leaseTokenOf(db, Number(last!.id))), 'flaky', true, false, 10, { baseSeconds: 0, maxSeconds: 0 });
  assert.deepEqual([immediate?.retrying, immediate?.backoffSeconds], [true, 0]);
  assert.equal((await leaseTasks(db, 'w', 1, 30)).length, 1);
}, migrated);

async function leaseTokenOf(db: Db, taskId: number): Promise<string> {
  const [row] = await db.query<{ lease_token: string }>(`SELECT lease_token FROM tasks WHERE id = $1`, [taskId]);
  return row!.lease_token;
}

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
}, migrated);

forEachEngine('leasing matches regions, cores, memory and GPUs', async (db) => {
  await jobWithTasks(db, 'J', 0);
  const queue = (chunkIndex: number, needs: Partial<TaskNeeds>) => insertTasks(db, 'J', 'app', [{ chunkIndex }], { maxAttempts: 1, priority: 0, needs: { ...NO_NEEDS, ...needs } });
  await queue(0, { regionWhitelist: ['eu'] });
  await queue(1, { regionBlacklist: ['eu'] });
  await queue(2, { minCpu: 8 });
  await queue(3, { minMemoryGb: 64 });
  await queue(4, { gpus: ['a100', 'h100'] });
  await queue(5, {});
  await queue(6, { image: 'python:3.11-slim' });
  await queue(7, { image: 'ghcr.io/acme/whisper:2' });
  const host = { containers: false, hostImages: likePatterns(['python:*']) };
  const small: WorkerOffer = { region: 'eu', cpus: 2, memoryGb: 4, gpus: [], ...host };
  const chunks = async (offer: WorkerOffer) => (await leaseTasks(db, 'w', 10, 30, offer)).map((task) => task.chunkIndex);
  assert.deepEqual(await chunks(small), [0, 5, 6], 'a small eu worker gets the eu task, the one with no needs and the image it maps to its host');
  assert.deepEqual(await chunks({ region: 'us', cpus: 2, memoryGb: 4, gpus: ['t4'], containers: false, hostImages: likePatterns(['python_3*', 'ghcr.io/acme/whisper']) }), [1], 'us is not blacklisted; a t4 is not an accepted GPU; "_" and an image without its tag match nothing');
  assert.deepEqual(await chunks({ region: 'us', cpus: 16, memoryGb: 128, gpus: ['h100'], containers: false, hostImages: [] }), [2, 3, 4]);
  assert.deepEqual(await chunks({ region: 'us', cpus: 1, memoryGb: 1, gpus: [], containers: true, hostImages: [] }), [7], 'a worker with a container runtime runs any image');
}, migrated);

forEachEngine('a heartbeat looks its leases up by id, however many tasks are leased or done', async (db) => {
  await jobWithTasks(db, 'H', 20_000);
  // The statistics of a fresh fan-out: nothing leased, nothing done. As a plain join the planner
  // then expected one leased-or-done row and compared every such row with every lease.
  await analyzeTasks(db);
  const leased = await leaseTasks(db, 'w1', 1000, 30);
  const done = leased.slice(0, 370);
  await completeAppTasks(db, done.map((task) => ({ taskId: task.id, leaseToken: task.leaseToken, outputs: [] })));
  const beating = [...leased.slice(370), done[0]!].map((task) => ({ id: task.id, leaseToken: task.leaseToken }));
  assert.deepEqual(await heartbeatTasks(db, beating, 30), [], 'every lease is held (the done one finished under it)');
  const reads = await tasksRead(db, (explaining) => heartbeatTasks(explaining, beating, 30));
  assert.equal(reads.seqScans, 0, 'no sequential scan of the tasks table');
  // 631 leases: one row read to find each, and the extension reads only those due (none here).
  assert.ok(reads.rows <= 631 + 10, `a heartbeat of 631 leases read ${reads.rows} task rows`);
}, migrated);

forEachEngine('a completion, a failure or a lease check of one task reads that task only, however many are leased', async (db) => {
  await jobWithTasks(db, 'L', 20_000);
  // The statistics of a fresh fan-out: nothing leased. With them each of these read all 2,000
  // leased tasks to find its own, through the leased-tasks index (migration 0008).
  await analyzeTasks(db);
  const leased = await leaseTasks(db, 'w1', 2000, 30);
  const [one, two, three, four, ...rest] = leased;
  const single = await tasksRead(db, async (explaining) => {
    await completeTask(explaining, one!.id, one!.leaseToken, []);
    await failTaskAttempt(explaining, two!.id, two!.leaseToken, 'boom', true);
    await findLease(explaining, three!.id, three!.leaseToken);
    await isTaskLeaseCurrent(explaining, four!.id, four!.leaseToken);
  });
  assert.equal(single.seqScans, 0, 'no sequential scan of the tasks table');
  assert.ok(single.rows <= 4 + 2, `four lookups by id read ${single.rows} task rows`);
  // The statements on lists of leases, and on every leased task, keep an index that reads the
  // leased tasks only: without it a batch of 250 completions scanned the table in a nested loop.
  const batch = (from: number) => rest.slice(from, from + 250).map((task) => ({ taskId: task.id, leaseToken: task.leaseToken }));
  await db.query(`INSERT INTO accounts (id, max_shared_tasks) VALUES ('quota01', 5)`);
  const lists = await tasksRead(db, async (explaining) => {
    await findLeases(explaining, batch(0));
    await releaseTasks(explaining, batch(250));
    await completeAppTasks(explaining, batch(500).map((lease) => ({ ...lease, outputs: [] })));
    await releaseOwnedTasks(explaining, 'w1');
    await listWorkers(explaining, 30, 'all');
    await expireLeases(explaining, 10);
    // The room of accounts with a quota on shared workers, read on every shared lease while one exists.
    await sharedQuotaRoom(explaining);
  });
  assert.equal(lists.seqScans, 0, 'no sequential scan of the tasks table');
  assert.ok(lists.rows <= 7 * 2000 + 10, `the seven read ${lists.rows} task rows`);
  // And they still do their work.
  assert.equal((await findLeases(db, batch(0))).size, 250);
  assert.equal(await releaseTasks(db, batch(250)), 250);
  assert.equal((await completeAppTasks(db, batch(500).map((lease) => ({ ...lease, outputs: [] })))).tasks.length, 250);
  assert.equal((await findLeases(db, [...batch(250), ...batch(500)])).size, 0, 'released and completed leases are no longer current');
  assert.equal(await releaseOwnedTasks(db, 'w1'), 2000 - 500, 'the rest (the single lookups above were rolled back)');
}, migrated);

forEachEngine('the queue\'s vacuum takes in the jobs table too, whose rows every batch of completions rewrites', async (db) => {
  await jobWithTasks(db, 'V', 200);
  for (let round = 0; round < 20; round++) {
    const leased = await leaseTasks(db, 'w1', 10, 30);
    await completeAppTasks(db, leased.map((task) => ({ taskId: task.id, leaseToken: task.leaseToken, outputs: [] })));
  }
  const vacuums = async () => Number((await db.query<{ n: string }>(`SELECT vacuum_count::text AS n FROM pg_stat_user_tables WHERE relname = 'jobs' AND schemaname = current_schema()`))[0]!.n);
  const before = await vacuums();
  await vacuumTasks(db);
  assert.equal(await vacuums(), before + 1, 'the jobs table was vacuumed');
  assert.equal((await db.query<{ chunks_done: number }>(`SELECT chunks_done FROM jobs WHERE id = 'V'`))[0]!.chunks_done, 200);
}, migrated);

forEachEngine('a lease that is not renewed runs out on its own; a heartbeat keeps one alive', async (db) => {
  await jobWithTasks(db, 'J', 2);
  const [kept, abandoned] = await leaseTasks(db, 'w1', 2, 1);
  assert.deepEqual(await heartbeatTasks(db, [{ id: kept!.id, leaseToken: kept!.leaseToken }], 60), []);
  // Real time, not a rewritten timestamp: the one-second lease must lapse by the database's clock.
  // Polled with a deadline rather than one fixed sleep.
  const deadline = Date.now() + 15_000;
  let expired = await expireLeases(db, 10);
  while (expired.length === 0) {
    assert.ok(Date.now() < deadline, 'a 1-second lease was still current after 15 s');
    await delay(50);
    expired = await expireLeases(db, 10);
  }
  assert.deepEqual(expired.map((attempt) => [attempt.taskId, attempt.retrying]), [[abandoned!.id, true]], 'only the lease nobody renewed');
  assert.equal(await completeTask(db, abandoned!.id, abandoned!.leaseToken, []), null, 'its old holder can no longer complete it');
  const [again] = await leaseTasks(db, 'w2', 5, 30);
  assert.deepEqual([again?.id, again?.attempt], [abandoned!.id, 2]);
  assert.ok(await completeTask(db, kept!.id, kept!.leaseToken, []), 'the renewed lease is still good');
}, migrated);

forEachEngine('outputs come back per kind in chunk order; counts are of app tasks', async (db) => {
  await jobWithTasks(db, 'J', 3);
  await insertTasks(db, 'J', 'partition', [{ chunkIndex: 0 }], { maxAttempts: 1, priority: 0 });
  const leased = await leaseTasks(db, 'w', 10, 30);
  const find = (kind: string, chunkIndex: number) => leased.find((task) => task.kind === kind && task.chunkIndex === chunkIndex)!;
  const output = (name: string) => [{ name, blobKey: `blobs/${name}`, size: name.length }];
  // Completed out of order: the listing orders by chunk, not by completion.
  await completeTask(db, find('app', 2).id, find('app', 2).leaseToken, output('two'));
  await completeTask(db, find('app', 0).id, find('app', 0).leaseToken, output('zero'));
  await failTaskAttempt(db, find('app', 1).id, find('app', 1).leaseToken, 'bad chunk', false);
  await completeTask(db, find('partition', 0).id, find('partition', 0).leaseToken, output('chunks'));
  assert.deepEqual(await listTaskOutputs(db, 'J', 'app'), [
    { chunkIndex: 0, outputs: output('zero') },
    { chunkIndex: 2, outputs: output('two') },
  ], 'failed tasks have no outputs to assemble');
  assert.deepEqual(await listTaskOutputs(db, 'J', 'partition'), [{ chunkIndex: 0, outputs: output('chunks') }]);
  assert.deepEqual(await listTaskOutputs(db, 'J', 'assemble'), []);
  assert.deepEqual(await countTasksByState(db, 'J'), { queued: 0, leased: 0, succeeded: 2, failed: 1, cancelling: 0, cancelled: 0 });
  assert.deepEqual(await countTasksByState(db, 'no-such-job'), { queued: 0, leased: 0, succeeded: 0, failed: 0, cancelling: 0, cancelled: 0 });
}, migrated);

forEachEngine('a batch of completions is fenced task by task; released leases go back to the queue without costing an attempt', async (db) => {
  await jobWithTasks(db, 'J', 4);
  await insertTasks(db, 'J', 'app', [{ chunkIndex: 10, inputKey: 'empty', inputSize: 0 }, { chunkIndex: 11, inputKey: 'big', inputSize: 5_000_000_000 }], { maxAttempts: 2, priority: 0 });
  const leased = await leaseTasks(db, 'w1', 10, 30);
  assert.equal(leased.length, 6);
  const chunk = (index: number) => leased.find((task) => task.chunkIndex === index)!;
  assert.deepEqual([chunk(0).inputSize, chunk(10).inputSize, chunk(11).inputSize], [null, 0, 5_000_000_000], 'the chunk size comes with the lease (null when unknown)');

  // One batch: a good lease, a wrong token, the same task twice, and a task of another lease.
  await db.query(`UPDATE jobs SET num_chunks = 6 WHERE id = 'J'`);
  const done = await completeAppTasks(db, [
    { taskId: chunk(0).id, leaseToken: chunk(0).leaseToken, outputs: [{ name: 'r0', blobKey: 'k/r0', size: 3 }], usage: { cpuSeconds: 1.5, wallSeconds: 2.25, peakMemoryBytes: 52_428_800 }, units: 0.25 },
    { taskId: chunk(1).id, leaseToken: 'not-the-token', outputs: [] },
    { taskId: chunk(2).id, leaseToken: chunk(2).leaseToken, outputs: [] },
    { taskId: chunk(2).id, leaseToken: chunk(2).leaseToken, outputs: [] },
  ]);
  assert.deepEqual(done.tasks.map((task) => [task.chunkIndex, task.attempt]).sort(), [[0, 1], [2, 1]], 'only current leases complete, each once');
  // The same statement counted them into the job, with what they used.
  assert.deepEqual(done.jobs, [{ jobId: 'J', chunksDone: 2, numChunks: 6 }]);
  const [counted] = await db.query<{ chunks_done: number; cpu_seconds: number; wall_seconds: number; peak_memory_bytes: string; units: number }>(`SELECT chunks_done, cpu_seconds, wall_seconds, peak_memory_bytes::text, units FROM jobs WHERE id = 'J'`);
  assert.deepEqual({ ...counted, peak_memory_bytes: Number(counted!.peak_memory_bytes) }, { chunks_done: 2, cpu_seconds: 1.5, wall_seconds: 2.25, peak_memory_bytes: 52_428_800, units: 0.25 });
  const usage = await db.query<{ chunk_index: number; cpu_seconds: number | null; wall_seconds: number | null; peak_memory_bytes: string | null }>(
    `SELECT chunk_index, cpu_seconds, wall_seconds, peak_memory_bytes FROM tasks WHERE job_id = 'J' AND chunk_index IN (0, 2) ORDER BY chunk_index`,
  );
  assert.deepEqual(usage.map((row) => [row.chunk_index, row.cpu_seconds, row.wall_seconds, row.peak_memory_bytes === null ? null : Number(row.peak_memory_bytes)]), [[0, 1.5, 2.25, 52_428_800], [2, null, null, null]], 'the usage is stored with the completion; none given, none stored');
  assert.deepEqual(await completeAppTasks(db, [{ taskId: chunk(0).id, leaseToken: chunk(0).leaseToken, outputs: [] }]), { tasks: [], jobs: [] }, 'a task completes once, and counts once');
  await insertTasks(db, 'J', 'assemble', [{ chunkIndex: 0 }], { maxAttempts: 2, priority: 0 });
  const [assemble] = await leaseTasks(db, 'w9', 1, 30);
  assert.equal(assemble?.kind, 'assemble');
  assert.deepEqual(await completeAppTasks(db, [{ taskId: assemble!.id, leaseToken: assemble!.leaseToken, outputs: [] }]), { tasks: [], jobs: [] }, 'a task of another kind is not completed');
  assert.deepEqual(await completeAppTasks(db, []), { tasks: [], jobs: [] });
  assert.equal((await db.query<{ chunks_done: number }>(`SELECT chunks_done FROM jobs WHERE id = 'J'`))[0]!.chunks_done, 2);
  assert.deepEqual((await listTaskOutputs(db, 'J', 'app')).find((task) => task.chunkIndex === 0)?.outputs, [{ name: 'r0', blobKey: 'k/r0', size: 3 }]);

  // findLeases: the current ones only, by id.
  const current = await findLeases(db, [{ taskId: chunk(1).id, leaseToken: chunk(1).leaseToken }, { taskId: chunk(2).id, leaseToken: chunk(2).leaseToken }, { taskId: chunk(3).id, leaseToken: 'forged' }]);
  assert.deepEqual([...current.keys()], [chunk(1).id]);

  // Handing back: fenced too; the task is queued again with its attempt undone.
  assert.equal(await releaseTasks(db, [{ taskId: chunk(1).id, leaseToken: chunk(1).leaseToken }, { taskId: chunk(3).id, leaseToken: 'forged' }, { taskId: chunk(2).id, leaseToken: chunk(2).leaseToken }]), 1);
  assert.equal(await completeTask(db, chunk(1).id, chunk(1).leaseToken, []), null, 'a released lease is dead');
  const [again] = await leaseTasks(db, 'w2', 1, 30);
  assert.deepEqual([again?.id, again?.attempt], [chunk(1).id, 1], 'the next holder runs attempt 1, not 2');
  assert.deepEqual(await countTasksByState(db, 'J'), { queued: 0, leased: 4, succeeded: 2, failed: 0, cancelling: 0, cancelled: 0 });

  // A stopped worker hands back everything still leased to it, and nothing of anyone else's.
  assert.equal(await releaseOwnedTasks(db, 'w1'), 3, 'w1 still held chunks 3, 10 and 11');
  assert.equal(await releaseOwnedTasks(db, 'w1'), 0);
  assert.deepEqual(await countTasksByState(db, 'J'), { queued: 3, leased: 1, succeeded: 2, failed: 0, cancelling: 0, cancelled: 0 });
  const relet = await leaseTasks(db, 'w3', 10, 30);
  assert.deepEqual(relet.map((task) => [task.chunkIndex, task.attempt]).sort((a, b) => a[0]! - b[0]!), [[3, 1], [10, 1], [11, 1]]);
}, migrated);

forEachEngine('a heartbeat rewrites a lease only once a quarter of it has passed, and never lets one run out', async (db) => {
  await jobWithTasks(db, 'J', 1);
  const [lease] = await leaseTasks(db, 'w1', 1, 40);
  const expiry = async () => (await db.query<{ at: Date }>(`SELECT lease_expires_at AS at FROM tasks WHERE id = $1`, [lease!.id]))[0]!.at.getTime();
  const granted = await expiry();
  assert.deepEqual(await heartbeatTasks(db, [{ id: lease!.id, leaseToken: lease!.leaseToken }], 40), []);
  assert.equal(await expiry(), granted, 'a fresh lease is left as it is');
  // 5 s left of 40: the next beat extends it to a full lease again.
  await db.query(`UPDATE tasks SET lease_expires_at = now() + interval '5 seconds' WHERE id = $1`, [lease!.id]);
  assert.deepEqual(await heartbeatTasks(db, [{ id: lease!.id, leaseToken: lease!.leaseToken }], 40), []);
  const remaining = (await expiry()) - Date.now();
  assert.ok(remaining > 35_000 && remaining <= 41_000, `extended to ${remaining} ms from now`);
}, migrated);
