import type { Log } from '../domain/log.js';
import { isTesseraError } from '../domain/errors.js';
import { retryDelay, sleep } from './backoff.js';
import type { TaskLease, WorkerLink } from '../domain/worker-link.js';
import { COMPLETION_BATCH, EMPTY_REPORT, MAX_LEASE_BATCH } from '../domain/worker-link.js';
import type { TaskEnvironment, TaskOutcome } from './run-task.js';
import { isInProcess } from '../domain/in-process.js';
import { TaskStop, runTask } from './run-task.js';

// A worker: N slots, each leasing one task at a time through the link and running it, plus one
// heartbeat loop for every lease held. A lease the server says is lost (expired, job aborted)
// has its process group killed at once; its result would be refused anyway.

/** Finished tasks whose reports may be under way at once before slots wait for them. */
const MAX_REPORTING = 2 * COMPLETION_BATCH;

/**
 * Tasks that took less than this (the last few, see ran) make an 'auto' worker lease one
 * task ahead per slot. Next to them the lease round trip a slot waits for between tasks matters
 * (python tasks of about 20 ms here: 19.5 ms a task with the queue, 20.0 without, in three
 * alternating pairs of runs), while a task queued behind them waits about this long at most.
 */
export const SHORT_TASK_MS = 500;

export interface WorkerOptions {
  link: WorkerLink;
  slots: number;
  env: TaskEnvironment;
  log: Log;
  /** How often leases are extended; well under the lease length. */
  heartbeatMs: number;
  /** How long one lease call may wait for work. */
  leaseWaitMs?: number;
  /**
   * Called once when the servers refuse this worker for good (its token revoked or unknown): it has
   * stopped leasing, and the caller decides what happens next (`tessera worker` exits non-zero).
   */
  onFatal?: (error: Error) => void;
  /**
   * Tasks leased ahead of free slots and kept in a local queue. Many small tasks then share a
   * round trip, and a slot starts its next task without waiting for one; the queued leases are
   * heartbeated like running ones and handed back when the worker stops. 0 leases only for idle
   * slots. 'auto' (the default) keeps one per slot while the worker's recent tasks were short
   * (under SHORT_TASK_MS) and none otherwise, so a queue never holds long tasks back from idle
   * workers elsewhere.
   */
  prefetch?: number | 'auto';
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
  const { env } = options;
  const held = new Map<number, { lease: TaskLease; stop: TaskStop }>();
  const stopping = new AbortController();
  let slots: Promise<void>[] = [];
  let heartbeat: NodeJS.Timeout | undefined;
  // Keeps the process alive while the worker runs: every other timer is unref'd, and with no
  // socket open (every server away) Node would otherwise find nothing to wait for and exit.
  let keepAlive: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;

  async function beat(): Promise<void> {
    if (held.size === 0) return;
    try {
      const lost = await link.heartbeat([...held.values()].map((entry) => entry.lease));
      for (const taskId of lost) {
        const entry = held.get(taskId);
        if (!entry) continue;
        log.warn({ taskId, jobId: entry.lease.jobId }, 'lease lost (job aborted or lease expired); stopping the task');
        entry.stop.stop();
      }
    } catch (error) {
      // The server is unreachable: keep running; if it stays away the leases expire and the
      // server hands the tasks to someone else, and our completions will be refused.
      log.warn({ err: error }, 'heartbeat failed');
    }
  }

  // Slots waiting for work share lease calls: one call asks for as many tasks as slots wait (plus
  // the local queue's room), so a busy worker makes one round trip (one lease statement) per
  // batch of tasks, not per task.
  const waiting: ((lease: TaskLease | null) => void)[] = [];
  const queued: TaskLease[] = [];
  let leasing = false;
  /** How long recent tasks took in their slot; unknown until one has run. */
  let recentTaskMs = Number.POSITIVE_INFINITY;

  /** The local queue's size now: fixed, or for 'auto' one per slot while tasks are short. */
  const prefetch = (): number => {
    if (options.prefetch !== undefined && options.prefetch !== 'auto') return options.prefetch;
    return recentTaskMs < SHORT_TASK_MS ? options.slots : 0;
  };

  /** A longer task counts at once (a queue must not hold tasks behind it), shorter ones by degrees. */
  function ran(ms: number): void {
    recentTaskMs = Number.isFinite(recentTaskMs) && ms < recentTaskMs ? 0.8 * recentTaskMs + 0.2 * ms : ms;
  }

  /** Keeps leasing while slots wait, or while the local queue is under half full. */
  const wanted = () => waiting.length > 0 || (prefetch() > 0 && queued.length <= prefetch() / 2);

  let pumping: Promise<void> | undefined;

  function pump(): Promise<void> {
    if (leasing) return pumping ?? Promise.resolve();
    leasing = true;
    pumping = leaseWhileWanted();
    return pumping;
  }

  // Failed lease calls in a row, and when the first of them failed (backoff.ts spaces the tries).
  let failures = 0;
  let failingSince = 0;

  async function leaseWhileWanted(): Promise<void> {
    try {
      while (wanted() && !stopping.signal.aborted) {
        let leases: TaskLease[];
        try {
          const max = Math.min(MAX_LEASE_BATCH, Math.max(1, waiting.length + prefetch() - queued.length));
          leases = await link.lease(max, options.leaseWaitMs ?? 5000, stopping.signal);
        } catch (error) {
          if (stopping.signal.aborted) break;
          // A refused token (revoked, say) or identity is final: retrying would only be refused again.
          if (isTesseraError(error) && (error.code === 'UNAUTHENTICATED' || error.code === 'PERMISSION_DENIED')) {
            log.error({ err: error }, 'the servers refuse this worker\'s token; it stops leasing');
            stopping.abort();
            options.onFatal?.(error);
            break;
          }
          const delayMs = retryDelay(failures++);
          if (failures === 1) failingSince = Date.now();
          // One line a try: the tries space out to one every RETRY_MAX_MS or so.
          log.warn({ err: error, retryInSeconds: Math.round(delayMs / 100) / 10 }, `cannot lease tasks: ${(error as Error).message}; retrying in ${(delayMs / 1000).toFixed(1)} s`);
          await sleep(delayMs, stopping.signal);
          continue;
        }
        if (failures > 0) {
          log.warn({ afterSeconds: Math.round((Date.now() - failingSince) / 1000) }, 'leasing works again');
          failures = 0;
        }
        // Registered as held before a slot gets it, so the next heartbeat extends it.
        for (const lease of leases) {
          held.set(lease.taskId, { lease, stop: new TaskStop() });
          const resolve = waiting.shift();
          if (resolve) resolve(lease);
          else queued.push(lease);
        }
      }
    } finally {
      leasing = false;
      if (stopping.signal.aborted) for (const resolve of waiting.splice(0)) resolve(null);
    }
  }

  function nextLease(): Promise<TaskLease | null> {
    if (stopping.signal.aborted) return Promise.resolve(null);
    const ready = queued.shift();
    if (ready) {
      if (wanted()) void pump();
      return Promise.resolve(ready);
    }
    return new Promise((resolve) => {
      waiting.push(resolve);
      void pump();
    });
  }

  // Tasks whose work is done but whose report (uploads, completion) is still under way. A slot does
  // not wait for that: it takes its next task, and the completions of many slots share calls.
  const reporting = new Set<Promise<void>>();

  async function settle(lease: TaskLease, outcome: Promise<TaskOutcome>): Promise<void> {
    try {
      const ended = await outcome;
      if (ended === 'lost') {
        // Killed because this worker is stopping: the attempt ends now and the task runs again
        // elsewhere at once, rather than when its lease runs out. (Fenced: a lease already lost
        // to an abort or an expiry changes nothing.)
        if (stopping.signal.aborted) await link.fail(lease, 'the worker running it was stopped', true, EMPTY_REPORT, true);
        // The process is gone: a cancelled job can now report Cancelled rather than Cancelling.
        await link.stopped(lease);
      }
      // Built-ins that run inside the worker finish thousands a second: their line is a debug one.
      const level = lease.component && isInProcess(lease.component.manifest) ? 'debug' : 'info';
      log[level]({ jobId: lease.jobId, taskId: lease.taskId, kind: lease.kind, chunk: lease.chunkIndex, attempt: lease.attempt, outcome: ended }, 'task finished');
    } catch (error) {
      log.error({ err: error, jobId: lease.jobId, taskId: lease.taskId }, 'task could not be reported; its lease will expire and it will run again');
    } finally {
      held.delete(lease.taskId);
    }
  }

  async function slot(): Promise<void> {
    for (let lease = await nextLease(); lease; lease = await nextLease()) {
      const { stop } = held.get(lease.taskId)!;
      const started = performance.now();
      let produced!: () => void;
      const workDone = new Promise<void>((resolve) => (produced = resolve));
      // Lost while it waited in the local queue (its job was aborted, say): never started.
      const outcome = stop.stopped ? Promise.resolve<TaskOutcome>('lost') : runTask(link, lease, env, stop, produced);
      const settled = settle(lease, outcome);
      reporting.add(settled);
      void settled.finally(() => reporting.delete(settled));
      await Promise.race([workDone, settled]);
      ran(performance.now() - started);
      while (reporting.size >= MAX_REPORTING) await Promise.race(reporting);
    }
  }

  return {
    start() {
      if (slots.length > 0) return;
      unsubscribe = link.onJobStopped?.((jobId) => {
        for (const entry of held.values()) if (entry.lease.jobId === jobId) entry.stop.stop();
      });
      heartbeat = setInterval(() => void beat(), options.heartbeatMs);
      heartbeat.unref();
      keepAlive = setInterval(() => {}, 1 << 30);
      slots = Array.from({ length: options.slots }, () => slot());
      if (prefetch() > 0) void pump();
    },
    async stop() {
      stopping.abort();
      for (const resolve of waiting.splice(0)) resolve(null);
      // Leased but never started: handed back at once, so they run elsewhere without waiting
      // for the lease to run out and without costing an attempt.
      const unstarted = queued.splice(0);
      for (const lease of unstarted) held.delete(lease.taskId);
      if (unstarted.length > 0) {
        await link.release(unstarted).catch((error: unknown) => log.warn({ err: error, tasks: unstarted.length }, 'could not hand back queued tasks; they run elsewhere when their leases expire'));
      }
      // Running tasks are killed, and their attempts failed with a retry (see settle).
      for (const entry of held.values()) entry.stop.stop();
      unsubscribe?.();
      clearInterval(heartbeat);
      clearInterval(keepAlive);
      await Promise.all(slots);
      await Promise.all(reporting);
      await pumping;
      // Last, whatever the server still has leased to this worker: a lease call cut off by the
      // stop may have leased tasks whose answer never arrived.
      const stranded = queued.splice(0);
      await link.release(stranded, true).catch((error: unknown) => log.warn({ err: error }, 'could not hand back this worker\'s remaining leases; they run elsewhere when they expire'));
      await env.runtime.close();
    },
    running: () => held.size,
  };
}
