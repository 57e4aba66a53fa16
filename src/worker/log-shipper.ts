import type { Log } from '../domain/log.js';
import type { LiveLogBatch, TaskLease, WorkerLink } from '../domain/worker-link.js';
import { LIVE_LOG_CALL_CHARS, LIVE_LOG_CALL_LINES } from '../domain/worker-link.js';
import type { LogCollector } from './task-logs.js';

// Streams the log lines of a worker's running tasks to the server while they run. One call at a
// time carries every task's new lines, FLUSH_MS after the first of them: never a request per
// line. What waits is held by each attempt's LogCollector, which is bounded; a slow or absent
// server makes lines wait there (and, past its first half, wait for the attempt's report). A
// call that failed is sent again: only one the server stored but whose answer was lost (a
// timeout, a cut connection) can store its lines twice.

const FLUSH_MS = 250;
/** After failed calls the next waits longer, up to this; the lines stay in their collectors. */
const MAX_RETRY_MS = 5000;

export interface LiveLogs {
  /** Stops following; once it resolves no call carries this attempt's lines and `logs.lines()` is what was not stored. */
  detach(): Promise<void>;
  /** Detaches and sends every remaining line through the live path (a task stopped under its lease: no report follows). */
  shipRest(): Promise<void>;
}

export interface LogShipper {
  attach(lease: TaskLease, logs: LogCollector): LiveLogs;
}

interface Follow {
  lease: TaskLease;
  logs: LogCollector;
  /** The server said this lease is not current: its lines are no longer sent. */
  refused: boolean;
}

export function createLogShipper(link: Pick<WorkerLink, 'appendLogs'>, log?: Log): LogShipper {
  const waiting = new Set<Follow>();
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> | undefined;
  let failures = 0;

  function schedule(): void {
    if (timer || sending || waiting.size === 0) return;
    const delayMs = failures === 0 ? FLUSH_MS : Math.min(MAX_RETRY_MS, FLUSH_MS * 2 ** failures);
    timer = setTimeout(() => {
      timer = undefined;
      sending = send().finally(() => {
        sending = undefined;
        schedule();
      });
    }, delayMs);
    // Lines never keep a stopping worker alive; its report carries them.
    timer.unref();
  }

  async function send(): Promise<void> {
    const taken: { follow: Follow; batch: LiveLogBatch }[] = [];
    let lines = 0;
    let chars = 0;
    for (const follow of waiting) {
      if (lines >= LIVE_LOG_CALL_LINES || chars >= LIVE_LOG_CALL_CHARS) break;
      const batch = { lease: follow.lease, lines: follow.logs.takeLive(LIVE_LOG_CALL_LINES - lines, LIVE_LOG_CALL_CHARS - chars) };
      waiting.delete(follow);
      if (batch.lines.length === 0) continue;
      lines += batch.lines.length;
      for (const line of batch.lines) chars += line.line.length;
      taken.push({ follow, batch });
    }
    if (taken.length === 0) return;
    let refused: Set<number>;
    try {
      refused = new Set(await link.appendLogs(taken.map((entry) => entry.batch)));
      failures = 0;
    } catch (error) {
      failures++;
      if (failures === 1) log?.warn({ err: error }, 'cannot stream task logs; they wait for the next try or the task\'s report');
      for (const { follow } of taken) {
        follow.logs.confirmLive(false);
        waiting.add(follow);
      }
      return;
    }
    for (const { follow } of taken) {
      follow.logs.confirmLive(true);
      if (refused.has(follow.lease.taskId)) follow.refused = true;
      else if (follow.logs.hasLive) waiting.add(follow);
    }
  }

  return {
    attach(lease, logs) {
      const follow: Follow = { lease, logs, refused: false };
      logs.onLine = () => {
        if (follow.refused) return;
        waiting.add(follow);
        schedule();
      };
      const detach = async () => {
        logs.onLine = undefined;
        waiting.delete(follow);
        // A call under way may carry this attempt's lines: its outcome decides what is left.
        await sending;
        waiting.delete(follow);
      };
      return {
        detach,
        async shipRest() {
          await detach();
          if (follow.refused) return;
          const rest = logs.lines();
          for (let first = 0; first < rest.length; first += LIVE_LOG_CALL_LINES) {
            try {
              await link.appendLogs([{ lease, lines: rest.slice(first, first + LIVE_LOG_CALL_LINES) }]);
            } catch (error) {
              log?.warn({ err: error, taskId: lease.taskId }, 'could not send the last log lines of a stopped task');
              return;
            }
          }
        },
      };
    },
  };
}
