import type { Log } from '../domain/log.js';
import type { TaskLease, WorkerLink } from '../domain/worker-link.js';
import type { TaskEnvironment } from './run-task.js';
import { resolvePython } from '../runner/runner.js';
import { runTask } from './run-task.js';

// A worker: N slots, each leasing one task at a time through the link and running it, plus one
// heartbeat loop for every lease held. A lease the server says is lost (expired, job aborted)
// has its process group killed at once; its result would be refused anyway.

/** Tasks asked for in one lease call (the worker API takes at most 100). */
const MAX_LEASE_BATCH = 100;

export interface WorkerOptions {
  link: WorkerLink;
  slots: number;
  env: TaskEnvironment;
  log: Log;
  /** How often leases are extended; well under the lease length. */
  heartbeatMs: number;
  /** How long one lease call may wait for work. */
  leaseWaitMs?: number;
}

export interface Worker {
  start(): void;
  /** Stops leasing, kills running tasks (their leases expire and they run elsewhere) and waits for the slots. */
  stop(): Promise<void>;
  /** Tasks running right now. */
  running(): number;
}

export function createWorker(options: WorkerOptions): Worker {
  const { link, log } = options;
  const env = { ...options.env, python: resolvePython(options.env.python, options.env.childEnv) };
  const held = new Map<number, { lease: TaskLease; controller: AbortController }>();
  const stopping = new AbortController();
  let slots: Promise<void>[] = [];
  let heartbeat: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;

  async function beat(): Promise<void> {
    if (held.size === 0) return;
    try {
      const lost = await link.heartbeat([...held.values()].map((entry) => entry.lease));
      for (const taskId of lost) {
        const entry = held.get(taskId);
        if (!entry) continue;
        log.warn({ taskId, jobId: entry.lease.jobId }, 'lease lost (job aborted or lease expired); stopping the task');
        entry.controller.abort();
      }
    } catch (error) {
      // The server is unreachable: keep running; if it stays away the leases expire and the
      // server hands the tasks to someone else, and our completions will be refused.
      log.warn({ err: error }, 'heartbeat failed');
    }
  }

  // Slots waiting for work share lease calls: one call asks for as many tasks as slots wait, so
  // a busy worker makes one round trip (one lease statement) per batch of tasks, not per task.
  const waiting: ((lease: TaskLease | null) => void)[] = [];
  let leasing = false;

  async function pump(): Promise<void> {
    if (leasing) return;
    leasing = true;
    try {
      while (waiting.length > 0 && !stopping.signal.aborted) {
        let leases: TaskLease[];
        try {
          leases = await link.lease(Math.min(waiting.length, MAX_LEASE_BATCH), options.leaseWaitMs ?? 5000, stopping.signal);
        } catch (error) {
          if (stopping.signal.aborted) break;
          log.error({ err: error }, 'leasing failed; trying again shortly');
          await new Promise((resolve) => setTimeout(resolve, 1000).unref());
          continue;
        }
        // Registered as held before the slot gets it, so the next heartbeat extends it.
        for (const lease of leases) {
          const resolve = waiting.shift();
          // Stopped meanwhile: the lease is left to expire, and the task runs elsewhere.
          if (!resolve) continue;
          held.set(lease.taskId, { lease, controller: new AbortController() });
          resolve(lease);
        }
      }
    } finally {
      leasing = false;
      if (stopping.signal.aborted) for (const resolve of waiting.splice(0)) resolve(null);
    }
  }

  function nextLease(): Promise<TaskLease | null> {
    if (stopping.signal.aborted) return Promise.resolve(null);
    return new Promise((resolve) => {
      waiting.push(resolve);
      void pump();
    });
  }

  async function slot(): Promise<void> {
    for (let lease = await nextLease(); lease; lease = await nextLease()) {
      const { controller } = held.get(lease.taskId)!;
      try {
        const outcome = await runTask(link, lease, env, controller.signal);
        // The process is gone: a cancelled job can now report Cancelled rather than Cancelling.
        if (outcome === 'lost') await link.stopped(lease);
        log.info({ jobId: lease.jobId, taskId: lease.taskId, kind: lease.kind, chunk: lease.chunkIndex, attempt: lease.attempt, outcome }, 'task finished');
      } catch (error) {
        log.error({ err: error, jobId: lease.jobId, taskId: lease.taskId }, 'task could not be reported; its lease will expire and it will run again');
      } finally {
        held.delete(lease.taskId);
      }
    }
  }

  return {
    start() {
      if (slots.length > 0) return;
      unsubscribe = link.onJobStopped?.((jobId) => {
        for (const entry of held.values()) if (entry.lease.jobId === jobId) entry.controller.abort();
      });
      heartbeat = setInterval(() => void beat(), options.heartbeatMs);
      heartbeat.unref();
      slots = Array.from({ length: options.slots }, () => slot());
    },
    async stop() {
      stopping.abort();
      for (const resolve of waiting.splice(0)) resolve(null);
      // Running tasks are killed; their leases expire and they run elsewhere.
      for (const entry of held.values()) entry.controller.abort();
      unsubscribe?.();
      clearInterval(heartbeat);
      await Promise.all(slots);
    },
    running: () => held.size,
  };
}
