import type { LiveLogLines } from '../store/live-logs.js';
import { appendLiveLogs } from '../store/live-logs.js';
import type { EngineDeps } from './deps.js';

// Lines of running attempts: stored under their lease and announced on `task-logs` (with the
// job's id), which wakes this process's log followers at once. Followers on other replicas find
// them at their next read (job-feeds.ts, feed-routes.ts, every 250 ms): a NOTIFY per batch would
// take PostgreSQL's commit-order lock for every worker's flush.

export const TASK_LOGS_SIGNAL = 'task-logs';

/** Stores what it can; returns the task ids whose lease is not current (their lines were dropped). */
export async function storeLiveLogs(deps: EngineDeps, batches: LiveLogLines[]): Promise<number[]> {
  const withLines = batches.filter((batch) => batch.lines.length > 0);
  const held = await appendLiveLogs(deps.db, withLines);
  const heldIds = new Set(held.map((task) => task.taskId));
  for (const jobId of new Set(held.map((task) => task.jobId))) deps.signals.emit(TASK_LOGS_SIGNAL, jobId);
  return withLines.filter((batch) => !heldIds.has(batch.taskId)).map((batch) => batch.taskId);
}
