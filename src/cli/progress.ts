// A one-line progress display for `tessera job run|watch`: state, tasks done of total, rate and
// ETA, redrawn in place on a terminal. Without a terminal (CI, pipes) it prints one line per
// state change instead, so logs stay readable.

export interface ProgressView {
  state: string;
  done: number;
  failed: number;
  total: number | null;
}

const WIDTH = 28;

/** A long task sends no event for minutes: the clock, rate and ETA are redrawn on a timer all the same. */
export const REDRAW_MS = 1000;

function shortState(state: string): string {
  return state.replace(/^JOB_STATE_/, '');
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s` : `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

export function createProgress(out: NodeJS.WriteStream, jobId: string, now: () => number = Date.now) {
  const tty = out.isTTY === true;
  const started = now();
  let firstDone: { at: number; done: number } | null = null;
  let lastPrinted = '';
  let drawn = false;
  let current: ProgressView | null = null;
  let timer: NodeJS.Timeout | undefined;

  function line(view: ProgressView): string {
    const total = view.total ?? 0;
    const ratio = total > 0 ? Math.min(1, view.done / total) : 0;
    const filled = Math.round(ratio * WIDTH);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}`;
    const at = now();
    if (view.done > 0 && !firstDone) firstDone = { at, done: view.done };
    // Measured from the first finished task, so the partitioner's time does not dilute the rate;
    // between completions the rate falls and the ETA grows, as they would in fact.
    const elapsed = firstDone ? (at - firstDone.at) / 1000 : 0;
    const rate = firstDone && elapsed > 0.5 ? (view.done - firstDone.done) / elapsed : 0;
    const eta = rate > 0 && total > 0 ? duration((total - view.done) / rate) : '?';
    const counts = view.total === null ? 'waiting for chunks' : `${view.done}/${total} tasks`;
    const failed = view.failed > 0 ? `, ${view.failed} failed attempts` : '';
    return `${shortState(view.state).padEnd(16)} ${bar} ${counts}${failed}  ${rate > 0 ? `${rate.toFixed(1)}/s` : '-/s'}  ETA ${eta}  (${duration((at - started) / 1000)})`;
  }

  function draw(): void {
    if (!current) return;
    out.write(`\r\x1b[2K${line(current)}`);
    drawn = true;
  }

  return {
    update(view: ProgressView): void {
      current = view;
      if (tty) {
        draw();
        // Unref'd: the clock never keeps the command alive once the job's stream has ended.
        timer ??= setInterval(draw, REDRAW_MS).unref();
      } else {
        // One line per state, plus one when the last task is done.
        const key = `${view.state}/${view.total !== null && view.done === view.total}`;
        if (key !== lastPrinted) out.write(`${jobId} ${line(view)}\n`);
        lastPrinted = key;
      }
    },
    /** Ends the redrawn line so what follows starts on a fresh one; the next update draws again. */
    finish(): void {
      clearInterval(timer);
      timer = undefined;
      if (tty && drawn) out.write('\n');
      drawn = false;
    },
  };
}
