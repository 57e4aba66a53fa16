import type { Queryable } from './db.js';

// Rows that go once they are of no use: the details of jobs long over, jobs past their own
// retention, and workers long gone. Everything is deleted a bounded batch at a time through a
// primary-key lookup, so the queue's statements never wait behind a large delete.

/** Ended jobs whose details were not compacted yet, ended more than `seconds` ago. */
export async function listJobsToCompact(db: Queryable, seconds: number, limit: number): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM jobs WHERE rows_compacted_at IS NULL AND ended_at IS NOT NULL AND ended_at < now() - make_interval(secs => $1)
      ORDER BY ended_at LIMIT $2`,
    [seconds, limit],
  );
  return rows.map((row) => row.id);
}

/**
 * Deletes up to `limit` detail rows of an ended job: its partition and app tasks (the assembler's
 * row holds its results), its log lines, and its events other than state changes. Returns how
 * many went; fewer than `limit` means the job is done (see markCompacted).
 */
export async function deleteJobDetails(db: Queryable, jobId: string, limit: number): Promise<number> {
  let left = limit;
  for (const statement of [
    `DELETE FROM tasks WHERE id = ANY(ARRAY(SELECT id FROM tasks WHERE job_id = $1 AND kind <> 'assemble' AND state IN ('succeeded', 'failed', 'cancelled') LIMIT $2))`,
    `DELETE FROM task_logs WHERE id = ANY(ARRAY(SELECT id FROM task_logs WHERE job_id = $1 LIMIT $2))`,
    `DELETE FROM job_events WHERE id = ANY(ARRAY(SELECT id FROM job_events WHERE job_id = $1 AND kind <> 'state' LIMIT $2))`,
  ]) {
    if (left <= 0) break;
    const deleted = await db.query(`WITH gone AS (${statement} RETURNING 1) SELECT count(*)::int AS n FROM gone`, [jobId, left]);
    left -= (deleted[0] as { n: number }).n;
  }
  return limit - left;
}

export async function markCompacted(db: Queryable, jobId: string): Promise<void> {
  await db.query('UPDATE jobs SET rows_compacted_at = now() WHERE id = $1', [jobId]);
}

/**
 * Deletes jobs past their retention (ended `jobSeconds` ago), and jobs their owner deleted
 * (`deletedSeconds` after): everything of theirs with them (the foreign keys cascade). Only jobs
 * whose temporary storage is gone already, so no blob is left without its job.
 */
export async function deleteExpiredJobs(db: Queryable, jobSeconds: number, deletedSeconds: number, limit: number): Promise<number> {
  const [deleted] = await db.query<{ n: number }>(
    `WITH gone AS (
       DELETE FROM jobs WHERE id = ANY(ARRAY(
         SELECT id FROM jobs WHERE blobs_deleted_at IS NOT NULL
            AND ((ended_at IS NOT NULL AND ended_at < now() - make_interval(secs => $1))
              OR (deleted_at IS NOT NULL AND deleted_at < now() - make_interval(secs => $2) AND (ended_at IS NOT NULL OR state = 'JOB_STATE_NEW')))
          LIMIT $3))
       RETURNING 1)
     SELECT count(*)::int AS n FROM gone`,
    [jobSeconds, deletedSeconds, limit],
  );
  return deleted?.n ?? 0;
}

/** Workers not seen for `seconds` (each start of a worker registers a new one). */
export async function deleteGoneWorkers(db: Queryable, seconds: number): Promise<number> {
  const [deleted] = await db.query<{ n: number }>(
    `WITH gone AS (DELETE FROM workers WHERE last_seen_at < now() - make_interval(secs => $1) RETURNING 1) SELECT count(*)::int AS n FROM gone`,
    [seconds],
  );
  return deleted?.n ?? 0;
}
