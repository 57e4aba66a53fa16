import type { LogLine } from '../domain/worker-link.js';
import type { Queryable } from './db.js';

// Log lines of attempts still running, streamed by their workers. Stored only under a current
// lease (or one whose job was aborted under it, 'cancelling'), checked in the same statement, so
// a worker that lost its lease adds nothing to the attempt that replaced it.

export interface LiveLogLines {
  taskId: number;
  leaseToken: string;
  lines: LogLine[];
}

/**
 * Stores the lines of every batch whose lease is current; returns those tasks with their jobs.
 * A batch names a task at most once (the caller checks). Each lease is looked up by its task id
 * (LATERAL … LIMIT 1, as heartbeatTasks does), so the cost does not depend on the table's statistics.
 */
export async function appendLiveLogs(db: Queryable, batches: LiveLogLines[]): Promise<{ taskId: number; jobId: string }[]> {
  if (batches.length === 0) return [];
  const lines = batches.flatMap((batch) => batch.lines.map((line) => ({ taskId: batch.taskId, line })));
  const rows = await db.query<{ id: string | number; job_id: string }>(
    `WITH held AS (
       SELECT DISTINCT t.id, t.job_id, t.kind, t.chunk_index, t.attempt
         FROM unnest($1::bigint[], $2::text[]) AS l (id, token)
        CROSS JOIN LATERAL (SELECT id, job_id, kind, chunk_index, attempt, state, lease_token FROM tasks WHERE tasks.id = l.id LIMIT 1) t
        WHERE t.lease_token = l.token AND t.state IN ('leased', 'cancelling')),
     stored AS (
       INSERT INTO task_logs (job_id, task_id, kind, chunk_index, attempt, at, stream, level, line)
       SELECT h.job_id, h.id, h.kind, h.chunk_index, h.attempt, l.at, l.stream, l.level, l.line
         FROM unnest($3::bigint[], $4::timestamptz[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS l (task_id, at, stream, level, line, n)
         JOIN held h ON h.id = l.task_id
        ORDER BY l.n)
     SELECT id, job_id FROM held`,
    [
      batches.map((batch) => batch.taskId),
      batches.map((batch) => batch.leaseToken),
      lines.map((entry) => entry.taskId),
      lines.map((entry) => entry.line.at),
      lines.map((entry) => entry.line.stream),
      lines.map((entry) => entry.line.level),
      lines.map((entry) => entry.line.line),
    ],
  );
  return rows.map((row) => ({ taskId: Number(row.id), jobId: row.job_id }));
}
