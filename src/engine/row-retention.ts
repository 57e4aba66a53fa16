import { deleteExpiredJobs, deleteGoneWorkers, deleteJobDetails, listJobsToCompact, markCompacted } from '../store/retention.js';
import type { EngineDeps } from './deps.js';

// Keeps the database's size flat under sustained load (run by the scheduler, a pass a minute):
// a finished job's task rows, log lines and events go after TESSERA_TASK_ROW_RETENTION_HOURS (its
// counts, usage, timestamps, state changes and results stay), the job itself after
// TESSERA_JOB_RETENTION_DAYS (or soon after its owner deleted it), workers a day after they were
// last seen. A pass deletes at most ROWS_PER_PASS rows, BATCH at a time, and goes on at the next.
// A pass that stops at its limit is followed by another a second later, so any rate is kept up with.

const BATCH = 2_000;
const ROWS_PER_PASS = 200_000;
const JOBS_PER_PAGE = 100;
const JOBS_DELETED_PER_PASS = 1000;
/** How long a job its owner deleted is kept (hidden) before its rows go. */
const DELETED_JOB_SECONDS = 3600;
const GONE_WORKER_SECONDS = 24 * 3600;

export interface RetentionPass {
  rows: number;
  /** The pass stopped at its limit with rows left: the next one should follow soon. */
  more: boolean;
  jobsCompacted: number;
  jobsDeleted: number;
  workersDeleted: number;
}

export function createRowRetention(deps: EngineDeps) {
  const { db, config } = deps;
  return {
    async pass(): Promise<RetentionPass> {
      const done: RetentionPass = { rows: 0, more: false, jobsCompacted: 0, jobsDeleted: 0, workersDeleted: 0 };
      // Jobs a page at a time until the pass's rows are spent: a fleet finishing more jobs a
      // minute than a page holds must not fall behind (with one page a pass it did, at 140 a minute).
      for (let page = await listJobsToCompact(db, config.taskRowRetentionSeconds, JOBS_PER_PAGE); page.length > 0 && done.rows < ROWS_PER_PASS; ) {
        for (const jobId of page) {
          for (let deleted = BATCH; deleted === BATCH && done.rows < ROWS_PER_PASS; ) {
            deleted = await deleteJobDetails(db, jobId, BATCH);
            done.rows += deleted;
            if (deleted < BATCH) {
              await markCompacted(db, jobId);
              done.jobsCompacted++;
            }
          }
          if (done.rows >= ROWS_PER_PASS) break;
        }
        page = page.length < JOBS_PER_PAGE ? [] : await listJobsToCompact(db, config.taskRowRetentionSeconds, JOBS_PER_PAGE);
      }
      done.more = done.rows >= ROWS_PER_PASS;
      done.jobsDeleted = await deleteExpiredJobs(db, config.jobRetentionSeconds, DELETED_JOB_SECONDS, JOBS_DELETED_PER_PASS);
      done.workersDeleted = await deleteGoneWorkers(db, GONE_WORKER_SECONDS);
      return done;
    },
  };
}
