import { randomUUID } from 'node:crypto';
import type { TaskKind, TaskState } from '../domain/types.js';
import type { TaskUsage } from '../domain/worker-link.js';
import type { Queryable } from './db.js';

// The task queue. A task is leased with one UPDATE over a SKIP LOCKED sub-select, so any number
// of workers and replicas can lease at once without waiting on each other or getting the same row.

/**
 * A file a finished task produced: where it is stored and its size. Only a partition's completion
 * may name a chunk with no blob (blobKey null): an empty chunk, never stored (its app task's
 * worker makes the empty file). Partitions' outputs are not kept on their rows, so every output
 * read back from the database has a key (StoredOutput).
 */
export interface TaskOutput {
  name: string;
  blobKey: string | null;
  size: number;
}

export type StoredOutput = TaskOutput & { blobKey: string };

export interface LeasedTask {
  id: number;
  jobId: string;
  kind: TaskKind;
  chunkIndex: number;
  attempt: number;
  maxAttempts: number;
  inputKey: string | null;
  /** The chunk's size in bytes when known (0: the worker makes an empty file, no download). */
  inputSize: number | null;
  leaseToken: string;
  /** Seconds from the task being queued to this lease (for the lease-wait metric). */
  queuedSeconds: number;
}

interface LeasedRow {
  id: string | number;
  job_id: string;
  kind: TaskKind;
  chunk_index: number;
  attempt: number;
  max_attempts: number;
  input_key: string | null;
  input_size: string | number | null;
  queued_seconds?: number;
}

/** A leased task as the lease statement sends it back (see leaseTasks). */
type LeasedTuple = [id: number, jobId: string, kind: TaskKind, chunkIndex: number, attempt: number, maxAttempts: number, inputKey: string | null, inputSize: number | null, queuedSeconds: number];

function rowToLeased(row: LeasedRow, leaseToken: string): LeasedTask {
  return {
    id: Number(row.id),
    jobId: row.job_id,
    kind: row.kind,
    chunkIndex: row.chunk_index,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    inputKey: row.input_key,
    inputSize: row.input_size === null || row.input_size === undefined ? null : Number(row.input_size),
    leaseToken,
    queuedSeconds: row.queued_seconds ?? 0,
  };
}

export interface NewTask {
  chunkIndex: number;
  inputKey?: string | null;
  inputSize?: number | null;
}

/** What a task needs from the worker that runs it. */
export interface TaskNeeds {
  minCpu: number;
  minMemoryGb: number;
  /** Accepted GPU models; null when no GPU is needed. */
  gpus: string[] | null;
  /** Allowed regions; null for any. */
  regionWhitelist: string[] | null;
  regionBlacklist: string[];
  /** The container image it runs in (normalised); null when any worker's host sandbox runs it. */
  image: string | null;
  /** The job's account: its own workers (a private pool) lease only its tasks. */
  accountId: string | null;
  /** Only the account's own workers may run it (the job's config.workerPool). */
  privateOnly: boolean;
}

export const NO_NEEDS: TaskNeeds = { minCpu: 0, minMemoryGb: 0, gpus: null, regionWhitelist: null, regionBlacklist: [], image: null, accountId: null, privateOnly: false };

/** What a worker offers, matched against TaskNeeds when it leases. */
export interface WorkerOffer {
  region: string;
  cpus: number;
  memoryGb: number;
  gpus: string[];
  /** Whether it runs any image in a container runtime. */
  containers: boolean;
  /** Images it runs in its host sandbox instead, as SQL LIKE patterns. */
  hostImages: string[];
  /** The account whose private pool it is in (it runs that account's tasks only); null or absent: a shared worker. */
  accountId?: string | null;
}

/**
 * The shared fleet's room for accounts with a quota of tasks on shared workers: `full` accounts
 * get none this time, the others at most their `room` each.
 */
export interface SharedQuota {
  full: string[];
  partial: { accountId: string; room: number }[];
}

// The leased-tasks index (tasks_lease_expiry) needs `lease_expires_at` named in the query
// (migration 0008; every leased task has an expiry). The statements on one task by id, token and
// state do not name it, so they look the task up in the primary key: with the index's old
// predicate they read every leased task instead (the planner's statistics, taken after a fan-out,
// expect one leased row, and the two indexes' costs differed by 0.01). The statements on a list
// of leases and on every leased task do name it: without the index, a batch of 250 completions
// became a sequential scan joined by a nested loop (161 ms, 2,000 × 250 rows), since the same
// estimate of one leased row steered the planner there; with it they read the leased tasks
// (bounded by the fleet) and hash them, as before.

/** Rows per INSERT statement of insertTasks. */
const INSERT_PAGE = 5000;

type QueueOptions = { maxAttempts: number; priority: number; needs?: TaskNeeds };

/**
 * Queues tasks; a task that already exists (same job, kind, chunk) is left alone, so a replay adds
 * nothing. created_at is when the row is written, not when its transaction began: a partition's
 * transaction records its chunks and the job's transition first, and that is not queueing time.
 */
export async function insertTasks(db: Queryable, jobId: string, kind: TaskKind, tasks: NewTask[], options: QueueOptions): Promise<number> {
  return insertPages(db, jobId, kind, tasks.length, options, (start, end) => {
    const page = tasks.slice(start, end);
    return [page.map((task) => task.chunkIndex), page.map((task) => task.inputKey ?? null), page.map((task) => task.inputSize ?? null)];
  });
}

/**
 * Queues one app task per chunk of a partition, chunk i reading `chunks[i]`: the columns are
 * built a page at a time from the chunk list itself, with no second list of 100,000 objects.
 */
export async function insertChunkTasks(db: Queryable, jobId: string, chunks: TaskOutput[], options: QueueOptions): Promise<number> {
  return insertPages(db, jobId, 'app', chunks.length, options, (start, end) => {
    const page = chunks.slice(start, end);
    // An empty chunk names no blob: its worker makes the empty file, and none may have been stored.
    return [page.map((_, offset) => start + offset), page.map((chunk) => (chunk.size === 0 ? null : chunk.blobKey)), page.map((chunk) => chunk.size)];
  });
}

async function insertPages(
  db: Queryable,
  jobId: string,
  kind: TaskKind,
  count: number,
  options: QueueOptions,
  columns: (start: number, end: number) => [number[], (string | null)[], (number | null)[]],
): Promise<number> {
  if (count === 0) return 0;
  const needs = options.needs ?? NO_NEEDS;
  let inserted = 0;
  // In pages: one statement with 100,000 rows builds its parameters as strings of megabytes, and
  // the server process's memory at its peak grows with them.
  for (let start = 0; start < count; start += INSERT_PAGE) {
    const [chunkIndexes, inputKeys, inputSizes] = columns(start, Math.min(count, start + INSERT_PAGE));
    // Counted in the database: a partition of 100,000 chunks need not send back 100,000 ids.
    const [counted] = await db.query<{ n: number }>(
      `WITH inserted AS (
       INSERT INTO tasks (job_id, kind, chunk_index, input_key, input_size, max_attempts, priority, min_cpu, min_memory_gb, gpus, region_whitelist, region_blacklist, image, account_id, private_only, created_at)
       SELECT $1, $2, chunk_index, input_key, input_size, $5, $6, $7, $8, $9, $10, $11, $13, $14, $15, clock_timestamp()
         FROM unnest($3::int[], $4::text[], $12::bigint[]) AS t (chunk_index, input_key, input_size)
       ON CONFLICT (job_id, kind, chunk_index) DO NOTHING
       RETURNING 1)
       SELECT count(*)::int AS n FROM inserted`,
      [jobId, kind, chunkIndexes, inputKeys, options.maxAttempts, options.priority, needs.minCpu, needs.minMemoryGb, needs.gpus, needs.regionWhitelist, needs.regionBlacklist, inputSizes, needs.image, needs.accountId, needs.privateOnly],
    );
    inserted += counted?.n ?? 0;
  }
  if (inserted > 0) await notifyTasksQueued(db);
  return inserted;
}

/**
 * Refreshes the planner's statistics of the tasks table. Needed after a big fan-out: until
 * autovacuum gets to it, the planner still believes the queue holds a few rows, sorts every queued
 * task on each lease instead of walking the queue index, and a 100,000-chunk job's leases grow
 * slower the more chunks are queued (measured: 25 ms a lease with 24,000 queued, against 0.1 ms).
 * Only the columns the queue's plans filter and sort on, at a small sample (migration 0007): the
 * row count is refreshed all the same, and on PGlite the ANALYZE holds the only connection while
 * it runs. The needs columns are among them: without their statistics the planner takes a
 * worker's offer to match one row in 100,000 and sorts the whole queue on every lease (145 ms).
 */
export async function analyzeTasks(db: Queryable): Promise<void> {
  await db.query(`ANALYZE tasks (${ANALYZED_COLUMNS.join(', ')})`);
}

/** The columns analyzeTasks samples (statistics target 10 each: migration 0007). */
const ANALYZED_COLUMNS = ['state', 'job_id', 'kind', 'priority', 'min_cpu', 'min_memory_gb', 'gpus', 'region_whitelist', 'region_blacklist', 'image'];

/**
 * Removes the tasks table's dead row versions and index entries (see VACUUM_AFTER_TASK_UPDATES in
 * task-flow.ts), and the jobs table's: every batch of completions rewrites its jobs' rows (their
 * counts), so a 100,000-chunk job leaves hundreds of dead versions of its row. Plain VACUUM:
 * reads and writes go on meanwhile; SKIP_LOCKED: if another replica or autovacuum is already at
 * a table, this one leaves it rather than wait.
 */
export async function vacuumTasks(db: Queryable): Promise<void> {
  await db.exec('VACUUM (SKIP_LOCKED) tasks, jobs');
}

export const TASKS_CHANNEL = 'tessera_tasks';

/** Wakes idle workers on every replica; sent at commit, so nobody looks before the rows exist. */
export async function notifyTasksQueued(db: Queryable): Promise<void> {
  await db.query(`SELECT pg_notify('${TASKS_CHANNEL}', '')`);
}

/**
 * Leases up to `limit` queued tasks this worker can run (its region, cores, memory and GPUs
 * match what each task needs), highest priority first. One statement: the SKIP LOCKED
 * sub-select lets any number of workers lease at once without waiting on each other.
 * Without an offer (store tests) every task matches. The tasks of one call share one fresh
 * random token: a (task, token) pair still names exactly one lease, and one token per call
 * rather than per row is a fifth less work for PGlite. For the same reason:
 *   - the tasks come back as one JSON array of arrays, not as rows: PGlite copies every field of
 *     every row into a buffer of its own (9,000 for a lease of 1,000 tasks), and JSON.parse
 *     reads the lot in one go (measured on PGlite: 27.5 µs a leased task instead of 35–38);
 *   - neither the token nor the expiry is sent back (the same for every task of a call; the
 *     worker never reads the expiry, its heartbeat keeps it ahead);
 *   - the wait is `date_part` (a float) rather than `EXTRACT` (a numeric, cast).
 * The picked ids are an array (`= ANY(ARRAY(…))`), not `IN (…)`: the planner made `IN` a hash
 * semi-join over a sequential scan of every task ever run (7 of 16.5 ms with 60,000 rows, growing
 * with the table); the array is looked up in the primary key (5.7 ms in all).
 * A retry still waiting out its back-off (`not_before` ahead) is skipped; `now()` is the
 * statement's one timestamp, so the test costs no function call per row.
 */
export async function leaseTasks(db: Queryable, owner: string, limit: number, leaseSeconds: number, offer?: WorkerOffer, token: string = randomUUID(), quota?: SharedQuota): Promise<LeasedTask[]> {
  // A private worker takes its account's tasks only; a shared one every task not kept private,
  // and, under quotas, none of a full account's and at most its room of another's (the window
  // below; only built when there are quotas, the common lease stays one plain index walk).
  const candidates = `SELECT id${quota ? ', account_id, priority' : ''} FROM tasks
         WHERE state = 'queued' AND (not_before IS NULL OR not_before <= now())
           AND ($4::boolean OR (
                min_cpu <= $5 AND min_memory_gb <= $6
            AND (gpus IS NULL OR gpus && $7::text[])
            AND (region_whitelist IS NULL OR $8 = ANY(region_whitelist))
            AND NOT ($8 = ANY(region_blacklist))
            AND (image IS NULL OR $10::boolean OR image LIKE ANY($11::text[]))))
           AND (($12::text IS NULL AND NOT private_only) OR account_id = $12)
           ${quota ? 'AND (account_id IS NULL OR account_id <> ALL($13::text[]))' : ''}
         ORDER BY priority DESC, id
         LIMIT $2
         FOR UPDATE SKIP LOCKED`;
  const picked = quota
    ? `WITH picked AS (${candidates}),
       numbered AS (SELECT id, account_id, row_number() OVER (PARTITION BY account_id ORDER BY priority DESC, id) AS n FROM picked),
       allowed AS (SELECT p.id FROM numbered p LEFT JOIN unnest($14::text[], $15::int[]) AS q (account_id, room) ON q.account_id = p.account_id
                    WHERE q.room IS NULL OR p.n <= q.room),`
    : 'WITH';
  const [leased] = await db.query<{ tasks: LeasedTuple[] }>(
    `${picked} leased AS (
      UPDATE tasks
        SET state = 'leased', lease_owner = $1, lease_token = $9, lease_shared = ($12::text IS NULL),
            lease_expires_at = now() + make_interval(secs => $3), attempt = attempt + 1,
            started_at = COALESCE(started_at, now())
      WHERE id = ANY(ARRAY(${quota ? 'SELECT id FROM allowed' : candidates}))
      RETURNING id, job_id, kind, chunk_index, attempt, max_attempts, input_key, input_size,
                date_part('epoch', now() - created_at) AS queued_seconds)
     SELECT coalesce(json_agg(json_build_array(id, job_id, kind, chunk_index, attempt, max_attempts, input_key, input_size, queued_seconds) ORDER BY id), '[]') AS tasks
       FROM leased`,
    [owner, limit, leaseSeconds, offer === undefined, offer?.cpus ?? 0, offer?.memoryGb ?? 0, offer?.gpus ?? [], offer?.region ?? '', token, offer?.containers ?? false, offer?.hostImages ?? [], offer?.accountId ?? null,
     ...(quota ? [quota.full, quota.partial.map((entry) => entry.accountId), quota.partial.map((entry) => entry.room)] : [])],
  );
  return (leased?.tasks ?? []).map(([id, jobId, kind, chunkIndex, attempt, maxAttempts, inputKey, inputSize, queuedSeconds]) => ({
    id: Number(id), jobId, kind, chunkIndex, attempt, maxAttempts, inputKey, inputSize: inputSize === null ? null : Number(inputSize), leaseToken: token, queuedSeconds,
  }));
}

/**
 * The room each account with a quota of tasks on shared workers has left: its quota less its
 * tasks leased to shared workers now. Read under the lock that serialises shared leases while
 * quotas exist (engine/task-flow.ts), so two lease calls never both take the last place.
 */
export async function sharedQuotaRoom(db: Queryable): Promise<SharedQuota> {
  const rows = await db.query<{ id: string; room: number }>(
    `SELECT a.id, a.max_shared_tasks - (SELECT count(*)::int FROM tasks t
                                         WHERE t.account_id = a.id AND t.state = 'leased' AND t.lease_expires_at IS NOT NULL AND t.lease_shared) AS room
       FROM accounts a WHERE a.max_shared_tasks IS NOT NULL`,
  );
  return { full: rows.filter((row) => row.room <= 0).map((row) => row.id), partial: rows.filter((row) => row.room > 0).map((row) => ({ accountId: row.id, room: row.room })) };
}

/**
 * Extends the leases still held; returns the ids whose lease was lost (expired and re-leased, or
 * cancelled). A lease is only rewritten once a quarter of it has passed: a worker beats every
 * few seconds, and rewriting a thousand freshly leased rows each time would cost more than the
 * tasks. A crashed worker's lease therefore runs out at most `leaseSeconds` after its last
 * extension, which is never later than before.
 */
export async function heartbeatTasks(db: Queryable, leases: { id: number; leaseToken: string }[], leaseSeconds: number): Promise<number[]> {
  if (leases.length === 0) return [];
  // A task listed twice (the list comes over HTTP) is still one held lease, not an error. A task
  // whose completion crossed this heartbeat finished under this very lease: held, not lost (the
  // worker would otherwise "stop" a task that is already done). The extending UPDATE runs whether
  // or not its rows are read.
  //
  // Each lease is looked up by its id (the LIMIT keeps the sub-select from being merged into a
  // join the planner may drive from the other side). As a plain join, the queue's statistics
  // (taken after a fan-out, when nothing is leased or done yet) made the planner expect one
  // leased or succeeded row: it scanned every such row of the table, every job's history, once
  // for each lease. 630 leases over 1,000 such rows took 100 ms (PostgreSQL) and 440 ms (PGlite).
  const rows = await db.query<{ id: string | number }>(
    `WITH held AS (
       SELECT DISTINCT t.id, t.state, t.lease_expires_at
         FROM unnest($1::bigint[], $2::text[]) AS l (id, token)
        CROSS JOIN LATERAL (SELECT id, state, lease_token, lease_expires_at FROM tasks WHERE tasks.id = l.id LIMIT 1) t
        WHERE t.lease_token = l.token AND t.state IN ('leased', 'succeeded')),
     extended AS (
       UPDATE tasks SET lease_expires_at = now() + make_interval(secs => $3)
        WHERE id IN (SELECT id FROM held WHERE state = 'leased' AND lease_expires_at < now() + make_interval(secs => $3 * 0.75))
        RETURNING id)
     SELECT id FROM held`,
    [leases.map((lease) => lease.id), leases.map((lease) => lease.leaseToken), leaseSeconds],
  );
  const held = new Set(rows.map((row) => Number(row.id)));
  return [...new Set(leases.filter((lease) => !held.has(lease.id)).map((lease) => lease.id))];
}

/**
 * Hands leases back without running them (a stopping worker's local queue): the tasks are queued
 * again and the attempt the lease counted is undone. Fenced like completion; returns how many.
 */
export async function releaseTasks(db: Queryable, leases: { taskId: number; leaseToken: string }[]): Promise<number> {
  if (leases.length === 0) return 0;
  const rows = await db.query(
    `UPDATE tasks SET state = 'queued', attempt = attempt - 1, lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL
       FROM unnest($1::bigint[], $2::text[]) AS l (id, token)
      WHERE tasks.id = l.id AND tasks.lease_token = l.token AND tasks.state = 'leased' AND tasks.lease_expires_at IS NOT NULL
      RETURNING tasks.id`,
    [leases.map((lease) => lease.taskId), leases.map((lease) => lease.leaseToken)],
  );
  if (rows.length > 0) await notifyTasksQueued(db);
  return rows.length;
}

/** Every lease still held by `owner` (a worker that has stopped), handed back as releaseTasks does. */
export async function releaseOwnedTasks(db: Queryable, owner: string): Promise<number> {
  const rows = await db.query(
    `UPDATE tasks SET state = 'queued', attempt = attempt - 1, lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL
      WHERE state = 'leased' AND lease_expires_at IS NOT NULL AND lease_owner = $1
      RETURNING id`,
    [owner],
  );
  if (rows.length > 0) await notifyTasksQueued(db);
  return rows.length;
}

/** Fenced completion: succeeds only for the current lease. Returns the task's job and chunk, or null. */
export async function completeTask(
  db: Queryable,
  taskId: number,
  leaseToken: string,
  outputs: TaskOutput[],
): Promise<{ jobId: string; kind: TaskKind; chunkIndex: number } | null> {
  const [row] = await db.query<{ job_id: string; kind: TaskKind; chunk_index: number }>(
    `UPDATE tasks SET state = 'succeeded', outputs = $3::jsonb, finished_at = now(), lease_expires_at = NULL
      WHERE id = $1 AND lease_token = $2 AND state = 'leased'
      RETURNING job_id, kind, chunk_index`,
    [taskId, leaseToken, JSON.stringify(outputs)],
  );
  return row ? { jobId: row.job_id, kind: row.kind, chunkIndex: row.chunk_index } : null;
}

/** One finished task of a batch: its lease, the files it produced and what its process used. */
export interface Completion {
  taskId: number;
  leaseToken: string;
  outputs: TaskOutput[];
  usage?: TaskUsage | null;
  /** vCPU·GiB·hours of the usage (usageUnits), added to the job's. */
  units?: number;
}

/** What a batch of app completions did: the tasks completed, and each of their jobs' count after it. */
export interface AppCompletions {
  tasks: { id: number; jobId: string; chunkIndex: number; attempt: number }[];
  jobs: { jobId: string; chunksDone: number; numChunks: number | null }[];
}

/**
 * Fenced completion of many app tasks in one statement, which also counts them into their jobs:
 * the tasks whose lease is no longer current (or that are not app tasks) are left alone; each
 * job's chunks_done, usage and stored bytes grow by what its completed tasks brought. One statement, so a quiet
 * batch (no log lines) is one round trip and commits alone: on this machine each statement sent
 * cost the server about 0.36 ms in the socket write, and BEGIN, two statements and COMMIT were
 * four. The job rows are locked by the statement; a deadlock with a twin batch is retried whole.
 * `units` per task are the vCPU·GiB·hours of its usage (usageUnits).
 */
export async function completeAppTasks(db: Queryable, completions: Completion[]): Promise<AppCompletions> {
  if (completions.length === 0) return { tasks: [], jobs: [] };
  // One JSON array back, not a row per task: see leaseTasks. The usage goes into the same row
  // version (no second UPDATE of each task); a task without one keeps what it had.
  const [answer] = await db.query<{ tasks: [id: number, jobId: string, chunkIndex: number, attempt: number][]; jobs: [jobId: string, chunksDone: number, numChunks: number | null][] }>(
    `WITH c AS (
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::bigint[], $7::float8[], $8::bigint[]) AS c (id, token, outputs, cpu, wall, peak, units, bytes)),
     completed AS (
       UPDATE tasks SET state = 'succeeded', outputs = c.outputs::jsonb, finished_at = now(), lease_expires_at = NULL,
                        cpu_seconds = coalesce(c.cpu, tasks.cpu_seconds), wall_seconds = coalesce(c.wall, tasks.wall_seconds),
                        peak_memory_bytes = coalesce(c.peak, tasks.peak_memory_bytes)
         FROM c
        WHERE tasks.id = c.id AND tasks.lease_token = c.token AND tasks.state = 'leased' AND tasks.lease_expires_at IS NOT NULL AND tasks.kind = 'app'
        RETURNING tasks.id, tasks.job_id, tasks.chunk_index, tasks.attempt, c.cpu, c.wall, c.peak, c.units, c.bytes),
     per_job AS (
       SELECT job_id, count(*)::int AS n, coalesce(sum(cpu), 0) AS cpu, coalesce(sum(wall), 0) AS wall,
              coalesce(max(peak), 0) AS peak, coalesce(sum(units), 0) AS units, sum(bytes) AS bytes
         FROM completed GROUP BY job_id),
     counted AS (
       UPDATE jobs SET chunks_done = chunks_done + p.n, cpu_seconds = cpu_seconds + p.cpu, wall_seconds = wall_seconds + p.wall,
                       peak_memory_bytes = GREATEST(jobs.peak_memory_bytes, p.peak), units = jobs.units + p.units,
                       stored_bytes = jobs.stored_bytes + p.bytes
         FROM per_job p
        WHERE jobs.id = p.job_id
        RETURNING jobs.id, jobs.chunks_done, jobs.num_chunks)
     SELECT (SELECT coalesce(json_agg(json_build_array(id, job_id, chunk_index, attempt)), '[]') FROM completed) AS tasks,
            (SELECT coalesce(json_agg(json_build_array(id, chunks_done, num_chunks)), '[]') FROM counted) AS jobs`,
    [completions.map((c) => c.taskId), completions.map((c) => c.leaseToken), completions.map((c) => JSON.stringify(c.outputs)),
     completions.map((c) => c.usage?.cpuSeconds ?? null), completions.map((c) => c.usage?.wallSeconds ?? null), completions.map((c) => (c.usage ? Math.round(c.usage.peakMemoryBytes) : null)),
     completions.map((c) => c.units ?? null), completions.map((c) => c.outputs.reduce((sum, output) => sum + output.size, 0))],
  );
  return {
    tasks: (answer?.tasks ?? []).map(([id, jobId, chunkIndex, attempt]) => ({ id: Number(id), jobId, chunkIndex, attempt })),
    jobs: (answer?.jobs ?? []).map(([jobId, chunksDone, numChunks]) => ({ jobId, chunksDone: Number(chunksDone), numChunks: numChunks === null ? null : Number(numChunks) })),
  };
}

/** Jobs whose every chunk is counted done but which still wait in PARTITIONED: their app phase ended with no one to close it (a server stopped between the two). */
export async function listCountedJobs(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM jobs WHERE state = 'JOB_STATE_PARTITIONED' AND num_chunks IS NOT NULL AND chunks_done >= num_chunks ORDER BY id`,
  );
  return rows.map((row) => row.id);
}

export interface FailedAttempt {
  jobId: string;
  kind: TaskKind;
  chunkIndex: number;
  attempt: number;
  maxAttempts: number;
  /** True when the task was put back in the queue for another attempt. */
  retrying: boolean;
  /** The lease was lost with its worker (no failure of the task's own), and how often that happened. */
  lost: boolean;
  lostLeases: number;
  /** How long a retry waits before it may be leased again (0: due now, as after a lost lease). */
  backoffSeconds: number;
}

/**
 * What a failed or lost attempt does to its task: a lost one (`$lost`) costs no attempt and goes
 * back to the queue until it was lost `$maxLost` times; a failed one goes back while it may be
 * retried (`$retry`) and has attempts left. The same CASE decides the state and whether it ended.
 */
function nextState(retry: string, lost: string, maxLost: string): string {
  return `CASE WHEN ${lost} THEN (CASE WHEN lost_leases + 1 < ${maxLost} THEN 'queued' ELSE 'failed' END)
               WHEN ${retry} AND attempt < max_attempts THEN 'queued' ELSE 'failed' END`;
}

type AttemptRow = { job_id: string; kind: TaskKind; chunk_index: number; attempt: number; max_attempts: number; state: TaskState; lost_leases: number; backoff_seconds?: number | null };

function attemptOf(row: AttemptRow, lost: boolean): FailedAttempt {
  return {
    jobId: row.job_id, kind: row.kind, chunkIndex: row.chunk_index, attempt: row.attempt, maxAttempts: row.max_attempts, retrying: row.state === 'queued', lost, lostLeases: row.lost_leases,
    backoffSeconds: row.state === 'queued' && row.backoff_seconds ? Number(row.backoff_seconds) : 0,
  };
}

/** How a failed attempt's retry is spaced: `baseSeconds` × 2^(failures − 1), at most `maxSeconds`, then ±20%. */
export interface RetryBackoff {
  baseSeconds: number;
  maxSeconds: number;
}

export const NO_BACKOFF: RetryBackoff = { baseSeconds: 0, maxSeconds: 0 };

/**
 * Records a failed attempt (fenced like completion). The task goes back to the queue while it
 * has attempts left (`retry` permitting), otherwise it ends failed. A failure of the task's own
 * is retried after its back-off (`not_before`); a lost lease is queued due at once. The jitter
 * keeps the retries of a fan-out that failed together (a dependency down) from coming back together.
 */
export async function failTaskAttempt(db: Queryable, taskId: number, leaseToken: string, error: string, retry: boolean, lost = false, maxLost = 10, backoff: RetryBackoff = NO_BACKOFF): Promise<FailedAttempt | null> {
  const state = nextState('$4', '$5', '$6');
  // Failures of its own so far: attempts less the leases lost, which cost none.
  const delay = `least($8::float8, $7::float8 * power(2, greatest(attempt - lost_leases, 1) - 1)) * (0.8 + 0.4 * random())`;
  const [row] = await db.query<AttemptRow>(
    `UPDATE tasks
        SET state = ${state}, finished_at = CASE WHEN ${state} = 'queued' THEN NULL ELSE now() END,
            not_before = CASE WHEN ${state} = 'queued' AND NOT $5 AND $7::float8 > 0 THEN now() + make_interval(secs => ${delay}) END,
            lost_leases = lost_leases + CASE WHEN $5 THEN 1 ELSE 0 END, max_attempts = max_attempts + CASE WHEN $5 THEN 1 ELSE 0 END,
            last_error = $3, lease_token = NULL, lease_expires_at = NULL,
            -- A task that ended failed keeps the worker of its last attempt, as a completed one does.
            lease_owner = CASE WHEN ${state} = 'failed' THEN lease_owner END
      WHERE id = $1 AND lease_token = $2 AND state = 'leased'
      RETURNING job_id, kind, chunk_index, attempt, max_attempts, state, lost_leases,
                date_part('epoch', not_before - now()) AS backoff_seconds`,
    [taskId, leaseToken, error, retry, lost, maxLost, backoff.baseSeconds, backoff.maxSeconds],
  );
  if (!row) return null;
  if (row.state === 'queued') await notifyTasksQueued(db);
  return attemptOf(row, lost);
}

/**
 * Leases whose holder stopped heartbeating (a crashed or partitioned worker), or, with `all`, every
 * lease (an embedded start: the process that held them is gone). Each is a lost lease: the task
 * goes back to the queue without losing an attempt, or ends failed once lost `maxLost` times.
 * Returns what it did, per task. The ids are looked up in the primary key, as in leaseTasks.
 */
export async function expireLeases(db: Queryable, maxLost: number, limit = 1000, all = false): Promise<(FailedAttempt & { taskId: number })[]> {
  const state = nextState('false', 'true', '$2');
  const rows = await db.query<AttemptRow & { id: string | number }>(
    `UPDATE tasks
        SET state = ${state}, finished_at = CASE WHEN ${state} = 'queued' THEN NULL ELSE now() END,
            lost_leases = lost_leases + 1, max_attempts = max_attempts + 1, not_before = NULL,
            last_error = 'lease lost: the worker stopped heartbeating (crashed, stopped or cut off)',
            lease_token = NULL, lease_expires_at = NULL, lease_owner = CASE WHEN ${state} = 'failed' THEN lease_owner END
      WHERE id = ANY(ARRAY(SELECT id FROM tasks WHERE state = 'leased' AND lease_expires_at < (CASE WHEN $3 THEN 'infinity'::timestamptz ELSE now() END) LIMIT $1 FOR UPDATE SKIP LOCKED))
      RETURNING id, job_id, kind, chunk_index, attempt, max_attempts, state, lost_leases`,
    [limit, maxLost, all],
  );
  if (rows.some((row) => row.state === 'queued')) await notifyTasksQueued(db);
  return rows.map((row) => ({ taskId: Number(row.id), ...attemptOf(row, true) }));
}

/**
 * Cancels every unfinished task of a job (abort, failure, timeout). Queued tasks are cancelled at
 * once; running ones become 'cancelling' (their lease token kept) until the worker confirms the
 * process stopped or the lease runs out. Their holders learn it at the next heartbeat.
 */
export async function cancelJobTasks(db: Queryable, jobId: string): Promise<number> {
  const rows = await db.query(
    `UPDATE tasks SET state = CASE WHEN state = 'leased' THEN 'cancelling' ELSE 'cancelled' END,
                      finished_at = CASE WHEN state = 'leased' THEN NULL ELSE now() END
      WHERE job_id = $1 AND state IN ('queued', 'leased') RETURNING id`,
    [jobId],
  );
  return rows.length;
}

/** The worker stopped a cancelled task's process (fenced by its lease token). */
export async function confirmTaskStopped(db: Queryable, taskId: number, leaseToken: string): Promise<boolean> {
  const rows = await db.query(
    `UPDATE tasks SET state = 'cancelled', lease_token = NULL, lease_expires_at = NULL, finished_at = now()
      WHERE id = $1 AND lease_token = $2 AND state = 'cancelling' RETURNING id`,
    [taskId, leaseToken],
  );
  return rows.length > 0;
}

export async function hasCancellingTasks(db: Queryable, jobId: string): Promise<boolean> {
  return (await db.query(`SELECT 1 FROM tasks WHERE job_id = $1 AND state = 'cancelling' LIMIT 1`, [jobId])).length > 0;
}

/** Cancelling tasks whose worker never confirmed: once the lease is over, nothing runs them any more. */
export async function expireCancellations(db: Queryable): Promise<number> {
  const rows = await db.query(
    `UPDATE tasks SET state = 'cancelled', lease_token = NULL, lease_expires_at = NULL, finished_at = now()
      WHERE state = 'cancelling' AND lease_expires_at < now() RETURNING id`,
  );
  return rows.length;
}

/** Outputs of a job's succeeded tasks of one kind, in chunk order. */
export async function listTaskOutputs(db: Queryable, jobId: string, kind: TaskKind): Promise<{ chunkIndex: number; outputs: StoredOutput[] }[]> {
  // Only the tasks that wrote something: a 100,000-chunk job whose app writes nothing made the
  // assembler's lease read and hold 100,000 rows of `[]` (the server's peak memory, 146 → 219 MB).
  const rows = await db.query<{ chunk_index: number; outputs: StoredOutput[] }>(
    `SELECT chunk_index, outputs FROM tasks
      WHERE job_id = $1 AND kind = $2 AND state = 'succeeded' AND outputs IS NOT NULL AND outputs <> '[]'::jsonb
      ORDER BY chunk_index`,
    [jobId, kind],
  );
  return rows.map((row) => ({ chunkIndex: row.chunk_index, outputs: row.outputs }));
}

/** The task a worker holds with this lease token, or null when the lease is not (or no longer) current. */
export async function findLease(db: Queryable, taskId: number, leaseToken: string): Promise<LeasedTask | null> {
  const [row] = await db.query<LeasedRow>(
    `SELECT id, job_id, kind, chunk_index, attempt, max_attempts, input_key, input_size
       FROM tasks WHERE id = $1 AND lease_token = $2 AND state = 'leased'`,
    [taskId, leaseToken],
  );
  return row ? rowToLeased(row, leaseToken) : null;
}

/** findLease for many tasks in one query: the current ones, by task id. */
export async function findLeases(db: Queryable, leases: { taskId: number; leaseToken: string }[]): Promise<Map<number, LeasedTask>> {
  if (leases.length === 0) return new Map();
  const rows = await db.query<LeasedRow & { lease_token: string }>(
    `SELECT id, job_id, kind, chunk_index, attempt, max_attempts, input_key, input_size, lease_token
       FROM tasks WHERE id = ANY($1::bigint[]) AND state = 'leased' AND lease_expires_at IS NOT NULL
        AND EXISTS (SELECT 1 FROM unnest($1::bigint[], $2::text[]) AS l (id, token) WHERE l.id = tasks.id AND l.token = tasks.lease_token)`,
    [leases.map((lease) => lease.taskId), leases.map((lease) => lease.leaseToken)],
  );
  return new Map(rows.map((row) => [Number(row.id), rowToLeased(row, row.lease_token)]));
}

export async function isTaskLeaseCurrent(db: Queryable, taskId: number, leaseToken: string): Promise<boolean> {
  const rows = await db.query(`SELECT 1 FROM tasks WHERE id = $1 AND lease_token = $2 AND state = 'leased'`, [taskId, leaseToken]);
  return rows.length > 0;
}

export async function countTasksByState(db: Queryable, jobId: string): Promise<Record<TaskState, number>> {
  const rows = await db.query<{ state: TaskState; count: number }>(
    `SELECT state, count(*)::int AS count FROM tasks WHERE job_id = $1 AND kind = 'app' GROUP BY state`,
    [jobId],
  );
  const counts: Record<TaskState, number> = { queued: 0, leased: 0, succeeded: 0, failed: 0, cancelling: 0, cancelled: 0 };
  for (const row of rows) counts[row.state] = row.count;
  return counts;
}
