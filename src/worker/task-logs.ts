import type { LogLine } from '../domain/worker-link.js';
import { LevelReader } from './log-levels.js';

// A task's stdout and stderr as log lines: split at newlines, stamped when they arrive, given a
// level, and bounded. Past the limit the first half and the last half of the lines are kept (how
// a run began and how it ended), with one line saying how many were left out. The first half is
// also what streams while the task runs (log-shipper.ts); the rest waits for the attempt's end.

const MAX_LINE_CHARS = 4096;

/** The unfinished last line of a stream: at most MAX_LINE_CHARS bytes of it, and how much more there was. */
interface UnfinishedLine {
  bytes: Buffer[];
  kept: number;
  leftOut: number;
}

export class LogCollector {
  private readonly head: LogLine[] = [];
  private tail: LogLine[] = [];
  private omitted = 0;
  private readonly partial: Record<'stdout' | 'stderr', UnfinishedLine> = { stdout: { bytes: [], kept: 0, leftOut: 0 }, stderr: { bytes: [], kept: 0, leftOut: 0 } };
  private readonly levels = { stdout: new LevelReader('stdout'), stderr: new LevelReader('stderr') };
  /** Head lines the server has stored already, and head lines in a call under way. */
  private streamed = 0;
  private streaming = 0;
  /** Called when a line that may stream is added; set while a shipper follows this attempt. */
  onLine: (() => void) | undefined;

  constructor(private readonly maxLines: number) {}

  /** Whether lines wait to be streamed (none while a call is under way for this attempt). */
  get hasLive(): boolean {
    return this.streaming === 0 && this.head.length > this.streamed;
  }

  /** Up to `maxLines` lines (and about `maxChars`) to stream now; `confirmLive` says how that went. */
  takeLive(maxLines: number, maxChars: number): LogLine[] {
    if (this.streaming > 0) return [];
    const taken: LogLine[] = [];
    let chars = 0;
    for (let index = this.streamed; index < this.head.length && taken.length < maxLines && (taken.length === 0 || chars < maxChars); index++) {
      taken.push(this.head[index]!);
      chars += this.head[index]!.line.length;
    }
    this.streaming = taken.length;
    return taken;
  }

  /** After a call with the lines of `takeLive`: stored, or (failed) to be sent again. */
  confirmLive(stored: boolean): void {
    if (stored) this.streamed += this.streaming;
    this.streaming = 0;
  }

  /**
   * Lines are cut in bytes, before they are decoded: a line of hundreds of megabytes costs no more
   * memory than MAX_LINE_CHARS (as a string, a cut kept its whole line alive through V8's slices).
   */
  write(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const partial = this.partial[stream];
    let start = 0;
    for (let end = chunk.indexOf(10); ; end = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, end < 0 ? chunk.length : end);
      const room = MAX_LINE_CHARS - partial.kept;
      if (room > 0) {
        // Copied: a slice would keep the whole chunk alive.
        const kept = Buffer.from(piece.subarray(0, room));
        partial.bytes.push(kept);
        partial.kept += kept.length;
      }
      partial.leftOut += Math.max(0, piece.length - Math.max(0, room));
      if (end < 0) return;
      this.flush(stream);
      start = end + 1;
    }
  }

  private flush(stream: 'stdout' | 'stderr'): void {
    const partial = this.partial[stream];
    const text = Buffer.concat(partial.bytes).toString('utf8');
    this.add(stream, partial.leftOut > 0 ? `${text}… (${partial.leftOut} more bytes of this line left out)` : text);
    partial.bytes = [];
    partial.kept = 0;
    partial.leftOut = 0;
  }

  private add(stream: 'stdout' | 'stderr', raw: string): void {
    const line = raw.replace(/\r$/, '').replaceAll('\u0000', '');
    const entry: LogLine = { at: new Date().toISOString(), stream, level: this.levels[stream].levelOf(line), line };
    const keepHead = Math.ceil(this.maxLines / 2);
    if (this.head.length < keepHead) {
      this.head.push(entry);
      this.onLine?.();
      return;
    }
    // A follower would otherwise wonder why the lines stopped while the task still runs.
    if (this.head.length === keepHead && keepHead > 0 && this.onLine) {
      this.head.push({ at: entry.at, stream: 'stderr', level: 'WARN', line: `… later lines are held back until the attempt ends; its last ${this.maxLines - keepHead} are kept (TESSERA_MAX_LOG_LINES) …` });
      this.onLine();
    }
    this.tail.push(entry);
    const keepTail = this.maxLines - keepHead;
    if (this.tail.length > keepTail * 2) {
      this.omitted += this.tail.length - keepTail;
      this.tail = this.tail.slice(-keepTail);
    }
  }

  /** Every kept line not streamed already, after flushing unterminated last lines. */
  lines(): LogLine[] {
    for (const stream of ['stdout', 'stderr'] as const) if (this.partial[stream].kept + this.partial[stream].leftOut > 0) this.flush(stream);
    const keepTail = this.maxLines - Math.ceil(this.maxLines / 2);
    const omitted = this.omitted + Math.max(0, this.tail.length - keepTail);
    const tail = keepTail > 0 ? this.tail.slice(-keepTail) : [];
    const head = this.head.slice(this.streamed + this.streaming);
    if (omitted === 0) return [...head, ...tail];
    const marker: LogLine = { at: (tail[0] ?? this.head[this.head.length - 1])?.at ?? new Date().toISOString(), stream: 'stderr', level: 'WARN', line: `… ${omitted} lines left out (TESSERA_MAX_LOG_LINES) …` };
    return [...head, marker, ...tail];
  }
}
