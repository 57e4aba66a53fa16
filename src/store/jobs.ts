import type { JobState } from '../domain/job-state.js';
import { JOB_STATES, isFinal } from '../domain/job-state.js';
import type { DataSource, Job, JobConfig, JobParams, Priority, Regions } from '../domain/types.js';
import type { Queryable } from './db.js';

export interface JobRow {
  id: string;
  account_id: string;
  template_id: string;
  name: string;
  description: string;
  state: JobState;
  priority: Priority;
  config: JobConfig;
  regions: Regions;
  data_source: DataSource;
  data_destination: DataSource;
  params: JobParams;
  app_id: string;
  num_chunks: number | null;
  chunks_done: number;
  attempts_failed: number;
  cpu_seconds: number;
  wall_seconds: number;
  peak_memory_bytes: string | number;
  units: number;
  error_message: string | null;
  state_timestamps: Record<string, string>;
  created_at: Date;
  start_at: Date | null;
  submitted_at: Date | null;
  started_at: Date | null;
  ended_at: Date | null;
  deleted_at: Date | null;
  upload_completed_at: Date | null;
  blobs_deleted_at: Date | null;
}

export const JOB_COLUMNS = `id, account_id, template_id, name, description, state, priority, config, regions, data_source,
  data_destination, params, app_id, num_chunks, chunks_done, attempts_failed, cpu_seconds, wall_seconds, peak_memory_bytes, units, error_message, state_timestamps, created_at, start_at, submitted_at,
  started_at, ended_at, deleted_at, upload_completed_at, blobs_deleted_at`;

export function rowToJob(row: JobRow): Job {
  const stateTimestamps: Job['stateTimestamps'] = {};
  for (const state of JOB_STATES) {
    const at = row.state_timestamps[state];
    if (at) stateTimestamps[state] = new Date(at);
  }
  return {
    id: row.id,
    accountId: row.account_id,
    templateId: row.template_id,
    name: row.name,
    description: row.description,
    state: row.state,
    priority: row.priority,
    config: row.config,
    regions: row.regions,
    dataSource: row.data_source,
    dataDestination: row.data_destination,
    params: row.params,
    appId: row.app_id,
    numChunks: row.num_chunks,
    chunksDone: row.chunks_done,
    attemptsFailed: row.attempts_failed,
    usage: { cpuSeconds: row.cpu_seconds, wallSeconds: row.wall_seconds, peakMemoryBytes: Number(row.peak_memory_bytes), units: row.units },
    errorMessage: row.error_message,
    stateTimestamps,
    createdAt: row.created_at,
    startAt: row.start_at,
    submittedAt: row.submitted_at,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    deletedAt: row.deleted_at,
    uploadCompletedAt: row.upload_completed_at,
    blobsDeletedAt: row.blobs_deleted_at,
  };
}

/** The fields a customer may set while a job is NEW. */
export interface JobDraft {
  templateId: string;
  name: string;
  description: string;
  priority: Priority;
  config: JobConfig;
  regions: Regions;
  dataSource: DataSource;
  dataDestination: DataSource;
  params: JobParams;
  appId: string;
  startAt: Date | null;
}

export async function insertJob(db: Queryable, job: JobDraft & { id: string; accountId: string }): Promise<Job> {
  const [row] = await db.query<JobRow>(
    `INSERT INTO jobs (id, account_id, template_id, name, description, priority, config, regions, data_source,
                       data_destination, params, app_id, start_at, state_timestamps)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb, $11::jsonb, $12, $13,
             jsonb_build_object('JOB_STATE_NEW', now()))
     RETURNING ${JOB_COLUMNS}`,
    [job.id, job.accountId, job.templateId, job.name, job.description, job.priority, JSON.stringify(job.config),
     JSON.stringify(job.regions), JSON.stringify(job.dataSource), JSON.stringify(job.dataDestination),
     JSON.stringify(job.params), job.appId, job.startAt],
  );
  await appendJobEvent(db, job.id, 'state', 'JOB_STATE_NEW', 'job created');
  return rowToJob(row!);
}

/** A customer's job, or null when it does not exist, is deleted, or belongs to another account. */
export async function getJob(db: Queryable, accountId: string, jobId: string): Promise<Job | null> {
  const [row] = await db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL`,
    [jobId, accountId],
  );
  return row ? rowToJob(row) : null;
}

/** Any job by id, for the engine (no tenant check: callers hold a lease on one of its tasks). */
export async function getJobForEngine(db: Queryable, jobId: string, options: { lock?: boolean } = {}): Promise<Job | null> {
  const [row] = await db.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1${options.lock ? ' FOR UPDATE' : ''}`, [jobId]);
  return row ? rowToJob(row) : null;
}

/** Replaces the customer-settable fields of a job that is still NEW; null when it is not NEW (or not theirs). */
export async function updateNewJob(db: Queryable, accountId: string, jobId: string, draft: JobDraft): Promise<Job | null> {
  const [row] = await db.query<JobRow>(
    `UPDATE jobs SET template_id = $3, name = $4, description = $5, priority = $6, config = $7::jsonb, regions = $8::jsonb,
            data_source = $9::jsonb, data_destination = $10::jsonb, params = $11::jsonb, app_id = $12, start_at = $13
      WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL AND state = 'JOB_STATE_NEW'
      RETURNING ${JOB_COLUMNS}`,
    [jobId, accountId, draft.templateId, draft.name, draft.description, draft.priority, JSON.stringify(draft.config),
     JSON.stringify(draft.regions), JSON.stringify(draft.dataSource), JSON.stringify(draft.dataDestination),
     JSON.stringify(draft.params), draft.appId, draft.startAt],
  );
  return row ? rowToJob(row) : null;
}

/**
 * Moves a job from `from` to `to` if, and only if, it is still in `from`: the guard that lets any
 * number of replicas race on one job. Records the state's timestamp and an event. Returns false
 * when the job was not in `from`.
 */
export async function transitionJob(
  db: Queryable,
  jobId: string,
  from: JobState,
  to: JobState,
  extra: { numChunks?: number; message?: string } = {},
): Promise<boolean> {
  // The state's time is when this statement runs (clock_timestamp, read once), not when its
  // transaction began: a partition's transaction queues every chunk's task before it records
  // PARTITIONED, and a job's states are as far apart as the work between them. The event is
  // written by the same statement: one round trip, not two, in the transactions that queue tasks.
  const rows = await db.query(
    `WITH clock AS MATERIALIZED (SELECT clock_timestamp() AS at),
     moved AS (
       UPDATE jobs
          SET state = $3,
              state_timestamps = state_timestamps || jsonb_build_object($3::text, clock.at),
              submitted_at = CASE WHEN $3 = 'JOB_STATE_STARTED' THEN clock.at ELSE submitted_at END,
              started_at = CASE WHEN $3 = 'JOB_STATE_UPLOADING' THEN clock.at ELSE started_at END,
              ended_at = CASE WHEN $4 THEN clock.at ELSE ended_at END,
              num_chunks = COALESCE($5, num_chunks)
         FROM clock
        WHERE id = $1 AND state = $2
        RETURNING id),
     logged AS (INSERT INTO job_events (job_id, kind, state, message) SELECT id, 'state', $3, $6 FROM moved)
     SELECT id FROM moved`,
    [jobId, from, to, isFinal(to), extra.numChunks ?? null, extra.message ?? ''],
  );
  return rows.length > 0;
}

/** Bytes a job's tasks stored in the blob store (chunks, results), counted for the stored-bytes quota. */
export async function addStoredBytes(db: Queryable, jobId: string, bytes: number): Promise<void> {
  if (bytes > 0) await db.query('UPDATE jobs SET stored_bytes = stored_bytes + $2 WHERE id = $1', [jobId, bytes]);
}

/** Fails a job from whatever non-final state it is in. Returns false if it had already ended. */
export async function failJob(db: Queryable, jobId: string, errorMessage: string): Promise<boolean> {
  const rows = await db.query(
    `WITH clock AS MATERIALIZED (SELECT clock_timestamp() AS at),
     failed AS (
       UPDATE jobs
          SET state = 'JOB_STATE_FAILED',
              state_timestamps = state_timestamps || jsonb_build_object('JOB_STATE_FAILED', clock.at),
              error_message = $2,
              ended_at = clock.at
         FROM clock
        WHERE id = $1 AND state NOT IN ('JOB_STATE_COMPLETE', 'JOB_STATE_FAILED')
        RETURNING id),
     logged AS (INSERT INTO job_events (job_id, kind, state, message) SELECT id, 'state', 'JOB_STATE_FAILED', $2 FROM failed)
     SELECT id FROM failed`,
    [jobId, errorMessage],
  );
  return rows.length > 0;
}

/** An account's jobs that have started and not ended (an operator disabling it aborts them). */
export async function listRunningJobIds(db: Queryable, accountId: string): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM jobs WHERE account_id = $1 AND deleted_at IS NULL AND state <> ALL (ARRAY['JOB_STATE_NEW', 'JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'])`,
    [accountId],
  );
  return rows.map((row) => row.id);
}

export async function softDeleteJob(db: Queryable, accountId: string, jobId: string): Promise<boolean> {
  const rows = await db.query(
    'UPDATE jobs SET deleted_at = now() WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING id',
    [jobId, accountId],
  );
  return rows.length > 0;
}

/** Running jobs whose config.jobTimeout (seconds) has passed since they were submitted. */
export async function listTimedOutJobs(db: Queryable): Promise<{ id: string; jobTimeout: number }[]> {
  const rows = await db.query<{ id: string; job_timeout: number }>(
    `SELECT id, (config->>'jobTimeout')::float8 AS job_timeout
       FROM jobs
      WHERE state NOT IN ('JOB_STATE_NEW', 'JOB_STATE_COMPLETE', 'JOB_STATE_FAILED')
        AND jsonb_typeof(config->'jobTimeout') = 'number'
        AND (config->>'jobTimeout')::float8 > 0
        AND submitted_at + make_interval(secs => (config->>'jobTimeout')::float8) < now()`,
  );
  return rows.map((row) => ({ id: row.id, jobTimeout: row.job_timeout }));
}

export async function appendJobEvent(db: Queryable, jobId: string, kind: string, state: JobState | null, message: string): Promise<void> {
  await db.query('INSERT INTO job_events (job_id, kind, state, message) VALUES ($1, $2, $3, $4)', [jobId, kind, state, message]);
}

export interface JobEvent {
  id: number;
  at: Date;
  kind: string;
  state: JobState | null;
  message: string;
}

export async function listJobEvents(db: Queryable, jobId: string, afterId = 0): Promise<JobEvent[]> {
  const rows = await db.query<{ id: string | number; at: Date; kind: string; state: JobState | null; message: string }>(
    'SELECT id, at, kind, state, message FROM job_events WHERE job_id = $1 AND id > $2 ORDER BY id',
    [jobId, afterId],
  );
  return rows.map((row) => ({ ...row, id: Number(row.id) }));
}

/**
 * Claims one job waiting in DOWNLOADING for delivery to its destination, for `claimSeconds`; a
 * replica that crashes mid-delivery loses the claim when it runs out and another takes over.
 */
export async function claimDelivery(db: Queryable, claimSeconds: number): Promise<{ jobId: string; attempts: number } | null> {
  const [row] = await db.query<{ id: string; delivery_attempts: number }>(
    `UPDATE jobs SET delivery_claimed_until = now() + make_interval(secs => $1), delivery_attempts = delivery_attempts + 1
      WHERE id = (SELECT id FROM jobs
                   WHERE state = 'JOB_STATE_DOWNLOADING' AND (delivery_claimed_until IS NULL OR delivery_claimed_until < now())
                   ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING id, delivery_attempts`,
    [claimSeconds],
  );
  return row ? { jobId: row.id, attempts: row.delivery_attempts } : null;
}

/** Moves the claim's end: `seconds` from now (extending it while delivering, or delaying a retry). */
export async function setDeliveryClaim(db: Queryable, jobId: string, seconds: number): Promise<void> {
  await db.query('UPDATE jobs SET delivery_claimed_until = now() + make_interval(secs => $2) WHERE id = $1', [jobId, seconds]);
}

/** Jobs whose temporary storage is past retention: ended (or, never run, created) more than `seconds` ago. */
export async function listExpiredStorage(db: Queryable, seconds: number, limit: number): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM jobs
      WHERE blobs_deleted_at IS NULL AND coalesce(ended_at, created_at) < now() - make_interval(secs => $1)
        AND (ended_at IS NOT NULL OR state = 'JOB_STATE_NEW' OR deleted_at IS NOT NULL)
      ORDER BY coalesce(ended_at, created_at) LIMIT $2`,
    [seconds, limit],
  );
  return rows.map((row) => row.id);
}

export async function markStorageDeleted(db: Queryable, jobId: string): Promise<void> {
  await db.query('UPDATE jobs SET blobs_deleted_at = now() WHERE id = $1', [jobId]);
}
