import type { JobState } from '../domain/job-state.js';
import type { TaskKind } from '../domain/types.js';
import type { LogLevel, LogLine, TaskReport, TaskUsage } from '../domain/worker-link.js';
import type { Queryable } from './db.js';

// What an attempt reports when it ends (its logs and the resources its process used), and the
// feeds read from them: log queries, and the job events and progress the event streams push.

const GIB = 1024 ** 3;

export interface AttemptRef {
  taskId: number;
  jobId: string;
  kind: TaskKind;
  chunkIndex: number;
  attempt: number;
}

/**
 * Stores an attempt's report. Called in the transaction that completes or fails the attempt,
 * after the lease check passed, so a late worker's report is never counted.
 * Units: the attempt's CPU hours times its peak memory in GiB (vCPU·GiB·hours).
 */
export async function recordTaskReport(db: Queryable, ref: AttemptRef, report: TaskReport, failed: boolean): Promise<void> {
  const usage = report.usage;
  if (usage) {
    const units = usageUnits(usage);
    await db.query('UPDATE tasks SET cpu_seconds = $2, wall_seconds = $3, peak_memory_bytes = $4 WHERE id = $1', [ref.taskId, usage.cpuSeconds, usage.wallSeconds, Math.round(usage.peakMemoryBytes)]);
    await db.query(
      `UPDATE jobs SET cpu_seconds = cpu_seconds + $2, wall_seconds = wall_seconds + $3,
                       peak_memory_bytes = GREATEST(peak_memory_bytes, $4), units = units + $5,
                       attempts_failed = attempts_failed + $6
        WHERE id = $1`,
      [ref.jobId, usage.cpuSeconds, usage.wallSeconds, Math.round(usage.peakMemoryBytes), units, failed && ref.kind === 'app' ? 1 : 0],
    );
  } else if (failed && ref.kind === 'app') {
    await db.query('UPDATE jobs SET attempts_failed = attempts_failed + 1 WHERE id = $1', [ref.jobId]);
  }
  await recordTaskLogs(db, ref, report.logs);
}

/** vCPU·GiB·hours: the attempt's CPU hours times its peak memory in GiB. */
export function usageUnits(usage: TaskUsage): number {
  return (usage.cpuSeconds / 3600) * (usage.peakMemoryBytes / GIB);
}

/** An attempt's log lines (the report's other half, for callers that store the usage themselves). */
export async function recordTaskLogs(db: Queryable, ref: AttemptRef, logs: LogLine[]): Promise<void> {
  if (logs.length === 0) return;
  await db.query(
    `INSERT INTO task_logs (job_id, task_id, kind, chunk_index, attempt, at, stream, level, line)
     SELECT $1, $2, $3, $4, $5, at, stream, level, line
       FROM unnest($6::timestamptz[], $7::text[], $8::text[], $9::text[]) AS l (at, stream, level, line)`,
    [ref.jobId, ref.taskId, ref.kind, ref.chunkIndex, ref.attempt, logs.map((l) => l.at), logs.map((l) => l.stream), logs.map((l) => l.level), logs.map((l) => l.line)],
  );
}

/** A failed attempt that never reached a worker's report (lease expiry) still counts in progress. */
export async function countFailedAttempts(db: Queryable, attempts: { jobId: string; kind: TaskKind }[]): Promise<void> {
  const jobIds = attempts.filter((attempt) => attempt.kind === 'app').map((attempt) => attempt.jobId);
  if (jobIds.length === 0) return;
  await db.query(
    `UPDATE jobs SET attempts_failed = attempts_failed + c.n
       FROM (SELECT id, count(*)::int AS n FROM unnest($1::text[]) AS id GROUP BY id) AS c WHERE jobs.id = c.id`,
    [jobIds],
  );
}

export interface StoredLogLine extends LogLine {
  id: number;
  taskId: number;
  kind: TaskKind;
  chunkIndex: number;
  attempt: number;
}

export interface LogQuery {
  jobId: string;
  afterId?: number;
  taskIds?: number[];
  kinds?: TaskKind[];
  levels?: LogLevel[];
  limit: number;
}

/** Log lines of one job in the order they were stored, filtered; the caller checked the job is the account's. */
export async function listTaskLogs(db: Queryable, query: LogQuery): Promise<StoredLogLine[]> {
  const rows = await db.query<{ id: string | number; task_id: string | number; kind: TaskKind; chunk_index: number; attempt: number; at: Date; stream: 'stdout' | 'stderr'; level: LogLevel; line: string }>(
    `SELECT id, task_id, kind, chunk_index, attempt, at, stream, level, line FROM task_logs
      WHERE job_id = $1 AND id > $2
        AND ($3::bigint[] IS NULL OR task_id = ANY($3))
        AND ($4::text[] IS NULL OR kind = ANY($4))
        AND ($5::text[] IS NULL OR level = ANY($5))
      ORDER BY id LIMIT $6`,
    [query.jobId, query.afterId ?? 0, query.taskIds ?? null, query.kinds ?? null, query.levels ?? null, query.limit],
  );
  return rows.map((row) => ({
    id: Number(row.id),
    taskId: Number(row.task_id),
    kind: row.kind,
    chunkIndex: row.chunk_index,
    attempt: row.attempt,
    at: row.at.toISOString(),
    stream: row.stream,
    level: row.level,
    line: row.line,
  }));
}

/** The id of a job's newest log line (0: none), through task_logs_by_job. */
export async function lastTaskLogId(db: Queryable, jobId: string): Promise<number> {
  const [row] = await db.query<{ id: string | number | null }>('SELECT max(id) AS id FROM task_logs WHERE job_id = $1', [jobId]);
  return Number(row?.id ?? 0);
}

export interface FeedEvent {
  id: number;
  jobId: string;
  at: Date;
  kind: string;
  state: JobState | null;
  message: string;
}

export interface JobProgress {
  jobId: string;
  state: JobState;
  tasksDone: number;
  tasksFailed: number;
  tasksTotal: number | null;
}

/** Job events after `afterId`, of one job or of every job of the account. */
export async function listFeedEvents(db: Queryable, accountId: string, jobId: string | null, afterId: number, limit = 500): Promise<FeedEvent[]> {
  const rows = await db.query<{ id: string | number; job_id: string; at: Date; kind: string; state: JobState | null; message: string }>(
    `SELECT e.id, e.job_id, e.at, e.kind, e.state, e.message
       FROM job_events e JOIN jobs j ON j.id = e.job_id
      WHERE j.account_id = $1 AND ($2::text IS NULL OR e.job_id = $2) AND e.id > $3
      ORDER BY e.id LIMIT $4`,
    [accountId, jobId, afterId, limit],
  );
  return rows.map((row) => ({ id: Number(row.id), jobId: row.job_id, at: row.at, kind: row.kind, state: row.state, message: row.message }));
}

/** The newest event id (where a feed that starts "now" begins). */
export async function lastFeedEventId(db: Queryable): Promise<number> {
  const [row] = await db.query<{ id: string | number | null }>('SELECT max(id) AS id FROM job_events');
  return Number(row?.id ?? 0);
}

/** Progress of one job, or of the account's jobs that have not ended. */
export async function listJobProgress(db: Queryable, accountId: string, jobId: string | null): Promise<JobProgress[]> {
  const rows = await db.query<{ id: string; state: JobState; chunks_done: number; attempts_failed: number; num_chunks: number | null }>(
    `SELECT id, state, chunks_done, attempts_failed, num_chunks FROM jobs
      WHERE account_id = $1 AND deleted_at IS NULL
        AND ($2::text IS NULL AND state NOT IN ('JOB_STATE_NEW', 'JOB_STATE_COMPLETE', 'JOB_STATE_FAILED') OR id = $2)`,
    [accountId, jobId],
  );
  return rows.map((row) => ({ jobId: row.id, state: row.state, tasksDone: row.chunks_done, tasksFailed: row.attempts_failed, tasksTotal: row.num_chunks }));
}

/** Per-task usage and state for a job's tasks table (the dashboard and `tessera job status`). */
export async function listJobTasks(db: Queryable, jobId: string, page: { limit: number; offset: number }) {
  const rows = await db.query<{ id: string | number; kind: TaskKind; chunk_index: number; state: string; attempt: number; lost_leases: number; lease_owner: string | null; started_at: Date | null; finished_at: Date | null; cpu_seconds: number | null; wall_seconds: number | null; peak_memory_bytes: string | number | null; last_error: string | null }>(
    `SELECT id, kind, chunk_index, state, attempt, lost_leases, lease_owner, started_at, finished_at, cpu_seconds, wall_seconds, peak_memory_bytes, last_error
       FROM tasks WHERE job_id = $1 ORDER BY CASE kind WHEN 'partition' THEN 0 WHEN 'app' THEN 1 ELSE 2 END, chunk_index LIMIT $2 OFFSET $3`,
    [jobId, page.limit, page.offset],
  );
  return rows.map((row) => ({
    taskId: Number(row.id),
    kind: row.kind,
    chunkIndex: row.chunk_index,
    state: row.state,
    attempt: row.attempt,
    /** Leases lost with their workers (counted apart: they cost no attempt). */
    lostLeases: row.lost_leases,
    worker: row.lease_owner,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    cpuSeconds: row.cpu_seconds,
    wallSeconds: row.wall_seconds,
    peakMemoryBytes: row.peak_memory_bytes === null ? null : Number(row.peak_memory_bytes),
    error: row.last_error,
  }));
}
