import type { Queryable } from './db.js';

// An account's activity minute by minute (the dashboard's overview): tasks finished, tasks and
// jobs failed, and the queue's depth. Every task active in the window belongs to a job that had
// not ended when the window began (jobs_by_account_end, migration 0016), so the statement reads
// those jobs' tasks once and never the account's whole history.
//
// Queue depth is rebuilt from arrivals (created_at) and departures (the first lease, or the
// cancellation of a task never leased): the depth at the window's start plus a running sum of
// arrivals minus departures. A task queued again for a retry counts as waiting from its creation
// while it waits, and not again once leased anew: one arrival and one departure per task row.

export interface ActivityMinute {
  /** The minute's start. */
  at: Date;
  tasksDone: number;
  /** Tasks that ended failed (no attempts left); retried attempts are not counted. */
  tasksFailed: number;
  jobsFailed: number;
  /** Tasks waiting at the end of the minute (for the current minute: now). */
  queued: number;
}

export interface ActivityNow {
  queued: number;
  running: number;
  /** Connected workers that serve the account: its own and the shared fleet. */
  workers: number;
}

type Row = { at: Date; tasks_done: number; tasks_failed: number; jobs_failed: number; queued: number; queued_now: number; running_now: number; workers_now: number };

/** The last `minutes` minutes (the current one included), oldest first, and the counts now. */
export async function accountActivity(db: Queryable, accountId: string, minutes: number, connectedSeconds: number): Promise<{ minutes: ActivityMinute[]; now: ActivityNow }> {
  const rows = await db.query<Row>(
    `WITH bounds AS (SELECT date_trunc('minute', now()) - make_interval(mins => $2::int - 1) AS since),
     -- The window's start spelled out again (not read from bounds), so the planner can estimate
     -- how few jobs match and read their tasks by job id rather than the whole table.
     active_jobs AS (
       SELECT j.id, j.state, j.ended_at FROM jobs j
        WHERE j.account_id = $1 AND coalesce(j.ended_at, 'infinity'::timestamptz) >= date_trunc('minute', now()) - make_interval(mins => $2::int - 1)),
     task_times AS (
       SELECT t.state, t.created_at, t.finished_at,
              CASE WHEN t.state = 'queued' THEN NULL ELSE coalesce(t.started_at, t.finished_at) END AS left_queue_at
         FROM active_jobs j JOIN tasks t ON t.job_id = j.id),
     events AS (
       SELECT created_at AS at, 1 AS queued_change, 0 AS done, 0 AS failed, 0 AS jobs_failed FROM task_times, bounds WHERE created_at >= since
       UNION ALL SELECT left_queue_at, -1, 0, 0, 0 FROM task_times, bounds WHERE left_queue_at >= since
       UNION ALL SELECT finished_at, 0, 1, 0, 0 FROM task_times, bounds WHERE state = 'succeeded' AND finished_at >= since
       UNION ALL SELECT finished_at, 0, 0, 1, 0 FROM task_times, bounds WHERE state = 'failed' AND finished_at >= since
       UNION ALL SELECT ended_at, 0, 0, 0, 1 FROM active_jobs, bounds WHERE state = 'JOB_STATE_FAILED' AND ended_at >= since),
     per_minute AS (
       SELECT date_trunc('minute', at) AS at, sum(queued_change) AS queued_change, sum(done) AS done, sum(failed) AS failed, sum(jobs_failed) AS jobs_failed
         FROM events GROUP BY 1),
     at_start AS (
       SELECT count(*) AS queued FROM task_times, bounds WHERE created_at < since AND (left_queue_at IS NULL OR left_queue_at >= since))
     SELECT m.at,
            coalesce(p.done, 0)::int AS tasks_done,
            coalesce(p.failed, 0)::int AS tasks_failed,
            coalesce(p.jobs_failed, 0)::int AS jobs_failed,
            ((SELECT queued FROM at_start) + sum(coalesce(p.queued_change, 0)) OVER (ORDER BY m.at))::int AS queued,
            (SELECT count(*) FROM task_times WHERE state = 'queued')::int AS queued_now,
            (SELECT count(*) FROM task_times WHERE state = 'leased')::int AS running_now,
            (SELECT count(*) FROM workers WHERE last_seen_at > now() - make_interval(secs => $3) AND (account_id IS NULL OR account_id = $1))::int AS workers_now
       FROM bounds, generate_series(bounds.since, date_trunc('minute', now()), interval '1 minute') AS m (at)
       LEFT JOIN per_minute p ON p.at = m.at
      ORDER BY m.at`,
    [accountId, minutes, connectedSeconds],
  );
  const first = rows[0];
  return {
    minutes: rows.map((row) => ({ at: row.at, tasksDone: row.tasks_done, tasksFailed: row.tasks_failed, jobsFailed: row.jobs_failed, queued: row.queued })),
    now: { queued: first?.queued_now ?? 0, running: first?.running_now ?? 0, workers: first?.workers_now ?? 0 },
  };
}
