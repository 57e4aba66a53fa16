import { cancelJobTasks, expireCancellations } from '../store/tasks.js';
import { failJob, listTimedOutJobs } from '../store/jobs.js';
import type { EngineDeps } from './deps.js';
import type { TaskFlow } from './task-flow.js';

// The periodic sweep: leases whose worker went silent, and jobs past their jobTimeout. Every
// replica may run it; each step is a guarded update, so two sweeps at once do no harm.

const SWEEP_INTERVAL_MS = 1000;

export function createScheduler(deps: EngineDeps, flow: TaskFlow) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

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

  async function sweep(): Promise<void> {
    try {
      await flow.expireLeases();
      await expireCancellations(deps.db);
      await failTimedOutJobs();
    } catch (error) {
      // A sweep that fails (database restarting) is retried on the next tick; nothing is lost.
      deps.log.error({ err: error }, 'scheduler sweep failed');
    }
  }

  return {
    sweep,
    start(): void {
      if (timer) return;
      timer = setInterval(() => {
        if (!running) running = sweep().finally(() => (running = undefined));
      }, SWEEP_INTERVAL_MS);
      timer.unref();
    },
    async stop(): Promise<void> {
      clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
