import { cancelJobTasks, expireCancellations, listCountedJobs } from '../store/tasks.js';
import { failJob, listTimedOutJobs } from '../store/jobs.js';
import type { UnservedTask } from '../store/workers.js';
import { listUnservedTasks } from '../store/workers.js';
import type { EngineDeps } from './deps.js';
import type { TaskFlow } from './task-flow.js';
import type { Deliveries } from './deliveries.js';
import { ABANDONED_UPLOAD_MS } from '../blobs/blob-store.js';
import type { RetentionPass } from './row-retention.js';
import { createRowRetention } from './row-retention.js';

// The periodic sweep: leases whose worker went silent, jobs whose chunks are all done but whose app
// phase was left open, jobs past their jobTimeout, and a kick for deliveries and retention. Every
// replica may run it; each step is a guarded update, so two sweeps at once do no harm. Less often,
// the blob store is cleared of uploads a crash cut off.

const SWEEP_INTERVAL_MS = 1000;
/** How often the blob store is swept of abandoned uploads (and once, a minute after start). */
const BLOB_SWEEP_INTERVAL_MS = 6 * 60 * 60 * 1000;
const FIRST_BLOB_SWEEP_MS = 60 * 1000;
/** How often rows past their retention are deleted (row-retention.ts). */
const RETENTION_INTERVAL_MS = 60 * 1000;

function describeNeeds(task: UnservedTask): string {
  const pool = task.privateOnly
    ? 'a worker of the account\'s own pool (its config.workerPool is WORKER_POOL_PRIVATE; connect one with a worker token from POST /v1/auth/keys {"scope": "worker"})'
    : 'a worker of the shared pool or of the account\'s own pool';
  const needs = [
    task.regionWhitelist ? `a region in [${task.regionWhitelist.join(', ')}]` : '',
    task.regionBlacklist.length > 0 ? `a region not in [${task.regionBlacklist.join(', ')}]` : '',
    task.minCpu > 0 ? `${task.minCpu} cores` : '',
    task.minMemoryGb > 0 ? `${task.minMemoryGb} GB of memory` : '',
    task.gpus ? `a GPU of [${task.gpus.join(', ')}]` : '',
    task.image ? `the image ${task.image} (install podman on a worker, or map the image to a worker's host sandbox with TESSERA_HOST_IMAGES=${task.image.replace(/:.*$/, ':*')})` : '',
  ].filter(Boolean);
  return needs.length > 0 ? `${pool} with ${needs.join(', ')}` : pool;
}

export function createScheduler(deps: EngineDeps, flow: TaskFlow, deliveries: Deliveries) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let blobTimer: NodeJS.Timeout | undefined;
  let blobSweep: Promise<void> | undefined;
  let retentionTimer: NodeJS.Timeout | undefined;
  let retentionPass: Promise<RetentionPass | undefined> | undefined;
  const retention = createRowRetention(deps);

  /** One pass of row retention; its failure (the database away) waits for the next. */
  function retainRows(): Promise<RetentionPass | undefined> {
    retentionPass ??= retention
      .pass()
      .then((pass) => {
        if (pass.rows + pass.jobsDeleted + pass.workersDeleted > 0) deps.log.info(pass, 'deleted rows past their retention');
        // Rows left at the pass's limit: the next pass follows soon rather than in a minute.
        if (pass.more && retentionTimer) setTimeout(() => void retainRows(), 1000).unref();
        return pass;
      })
      .catch((error: unknown) => {
        deps.log.warn({ err: error }, 'could not delete rows past their retention; trying again later');
        return undefined;
      })
      .finally(() => (retentionPass = undefined));
    return retentionPass;
  }

  async function failTimedOutJobs(): Promise<void> {
    for (const job of await listTimedOutJobs(deps.db)) {
      const failed = await deps.db.transaction(async (tx) => {
        if (!(await failJob(tx, job.id, `the job ran longer than its jobTimeout of ${job.jobTimeout} s and was stopped`))) return false;
        await cancelJobTasks(tx, job.id);
        return true;
      });
      if (failed) {
        deps.log.warn({ jobId: job.id }, 'job timed out');
        deps.signals.emit('job-stopped', job.id);
      }
    }
  }

  /** Jobs waiting for a worker that is not there: said plainly, instead of waiting forever. */
  async function failUnservedJobs(): Promise<void> {
    const liveSeconds = Math.max(60, deps.config.leaseSeconds * 3);
    for (const task of await listUnservedTasks(deps.db, deps.config.unservedGraceSeconds, liveSeconds)) {
      const what = task.kind === 'app' ? `chunk ${task.chunkIndex}` : task.kind === 'partition' ? 'the partitioner' : 'the assembler';
      const message = `no connected worker can run ${what}: it needs ${describeNeeds(task)}, and no worker seen in the last ${liveSeconds} s offers that (waited ${deps.config.unservedGraceSeconds} s)`;
      const failed = await deps.db.transaction(async (tx) => {
        if (!(await failJob(tx, task.jobId, message))) return false;
        await cancelJobTasks(tx, task.jobId);
        return true;
      });
      if (failed) deps.log.warn({ jobId: task.jobId }, message);
    }
  }

  /**
   * Jobs whose last chunk was counted but whose app phase was never closed (a server stopped in
   * between). One that cannot be closed is said, and the sweep goes on to its other steps.
   */
  async function finishCountedJobs(): Promise<void> {
    for (const jobId of await listCountedJobs(deps.db)) {
      try {
        if (await flow.finishAppPhase(jobId)) deps.log.info({ jobId }, 'closed the app phase of a job whose chunks were all done');
      } catch (error) {
        deps.log.error({ err: error, jobId }, 'could not close the app phase of a job whose chunks are all done; trying again at the next sweep');
      }
    }
  }

  async function sweep(): Promise<void> {
    try {
      await flow.expireLeases();
      await finishCountedJobs();
      await expireCancellations(deps.db);
      await failTimedOutJobs();
      await failUnservedJobs();
      // Deliveries run beside the sweep (they may take minutes), one pass at a time.
      deliveries.kick();
    } catch (error) {
      // A sweep that fails (database restarting) is retried on the next tick; nothing is lost.
      deps.log.error({ err: error }, 'scheduler sweep failed');
    }
  }

  /** A killed server's unfinished uploads (S3 keeps, and bills, their parts) and temporary files. */
  async function sweepBlobs(): Promise<void> {
    try {
      const removed = await deps.blobs.sweepAbandonedUploads(ABANDONED_UPLOAD_MS);
      if (removed > 0) deps.log.info({ removed }, 'removed uploads abandoned more than a day ago (a server stopped during them)');
    } catch (error) {
      deps.log.warn({ err: error }, 'could not sweep the blob store of abandoned uploads; trying again later');
    }
  }

  return {
    sweep,
    /** Runs a pass of row retention now (tests; the scheduler runs one a minute). */
    retainRows,
    start(): void {
      if (timer) return;
      timer = setInterval(() => {
        if (!running) running = sweep().finally(() => (running = undefined));
      }, SWEEP_INTERVAL_MS);
      timer.unref();
      const blobsNow = () => {
        if (!blobSweep) blobSweep = sweepBlobs().finally(() => (blobSweep = undefined));
      };
      blobTimer = setTimeout(() => {
        blobsNow();
        blobTimer = setInterval(blobsNow, BLOB_SWEEP_INTERVAL_MS);
        blobTimer.unref();
      }, FIRST_BLOB_SWEEP_MS);
      blobTimer.unref();
      retentionTimer = setInterval(() => void retainRows(), RETENTION_INTERVAL_MS);
      retentionTimer.unref();
    },
    async stop(): Promise<void> {
      clearInterval(timer);
      clearTimeout(blobTimer);
      clearInterval(retentionTimer);
      await retentionPass;
      timer = undefined;
      blobTimer = undefined;
      await running;
      await blobSweep;
      await deliveries.stop();
    },
  };
}
