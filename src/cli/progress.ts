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

function shortState(state: string): string {
  return state.replace(/^JOB_STATE_/, '');
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s` : `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

export function createProgress(out: NodeJS.WriteStream, jobId: string) {
  const tty = out.isTTY === true;
  const started = Date.now();
  let firstDone: { at: number; done: number } | null = null;
  let lastPrinted = '';
  let drawn = false;

  function line(view: ProgressView): string {
    const total = view.total ?? 0;
    const ratio = total > 0 ? Math.min(1, view.done / total) : 0;
    const filled = Math.round(ratio * WIDTH);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}`;
    if (view.done > 0 && !firstDone) firstDone = { at: Date.now(), done: view.done };
    const elapsed = firstDone ? (Date.now() - firstDone.at) / 1000 : 0;
    const rate = firstDone && elapsed > 0.5 ? (view.done - firstDone.done) / elapsed : 0;
    const eta = rate > 0 && total > 0 ? duration((total - view.done) / rate) : '?';
    const counts = view.total === null ? 'waiting for chunks' : `${view.done}/${total} tasks`;
    const failed = view.failed > 0 ? `, ${view.failed} failed attempts` : '';
    return `${shortState(view.state).padEnd(16)} ${bar} ${counts}${failed}  ${rate > 0 ? `${rate.toFixed(1)}/s` : '-/s'}  ETA ${eta}  (${duration((Date.now() - started) / 1000)})`;
  }

  return {
    update(view: ProgressView): void {
      if (tty) {
        out.write(`\r\x1b[2K${line(view)}`);
        drawn = true;
      } else {
        // One line per state, plus one when the last task is done.
        const key = `${view.state}/${view.total !== null && view.done === view.total}`;
        if (key !== lastPrinted) out.write(`${jobId} ${line(view)}\n`);
        lastPrinted = key;
      }
    },
    /** Ends the redrawn line so what follows starts on a fresh one. */
    finish(): void {
      if (tty && drawn) out.write('\n');
      drawn = false;
    },
  };
}
