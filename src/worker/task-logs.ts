import type { LogLevel, LogLine } from '../domain/worker-link.js';

// A task's stdout and stderr as log lines: split at newlines, stamped when they arrive, given a
// level, and bounded. Past the limit the first half and the last half of the lines are kept (how
// a run began and how it ended), with one line saying how many were left out.

const MAX_LINE_CHARS = 4096;

// "ERROR: x", "[warning] x", "WARNING:root:x" (Python's logging), "level=info msg=…" (logfmt).
const LEVEL_PATTERN = /^\s*(?:\[|level=)?(trace|debug|info|warn|warning|error|err|fatal|critical|panic)\b/i;

const LEVEL_WORDS: Record<string, LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  warning: 'WARN',
  error: 'ERROR',
  err: 'ERROR',
  fatal: 'FATAL',
  critical: 'FATAL',
  panic: 'PANIC',
};

/** The level a line names at its start; otherwise INFO on stdout and ERROR on stderr. */
export function levelOf(line: string, stream: 'stdout' | 'stderr'): LogLevel {
  const match = LEVEL_PATTERN.exec(line);
  if (match) return LEVEL_WORDS[match[1]!.toLowerCase()]!;
  return stream === 'stdout' ? 'INFO' : 'ERROR';
}

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

  constructor(private readonly maxLines: number) {}

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
    const entry: LogLine = { at: new Date().toISOString(), stream, level: levelOf(line, stream), line };
    const keepHead = Math.ceil(this.maxLines / 2);
    if (this.head.length < keepHead) {
      this.head.push(entry);
      return;
    }
    this.tail.push(entry);
    const keepTail = this.maxLines - keepHead;
    if (this.tail.length > keepTail * 2) {
      this.omitted += this.tail.length - keepTail;
      this.tail = this.tail.slice(-keepTail);
    }
  }

  /** Every kept line, after flushing unterminated last lines. */
  lines(): LogLine[] {
    for (const stream of ['stdout', 'stderr'] as const) if (this.partial[stream].kept + this.partial[stream].leftOut > 0) this.flush(stream);
    const keepTail = this.maxLines - Math.ceil(this.maxLines / 2);
    const omitted = this.omitted + Math.max(0, this.tail.length - keepTail);
    const tail = keepTail > 0 ? this.tail.slice(-keepTail) : [];
    if (omitted === 0) return [...this.head, ...tail];
    const marker: LogLine = { at: (tail[0] ?? this.head[this.head.length - 1])?.at ?? new Date().toISOString(), stream: 'stderr', level: 'WARN', line: `… ${omitted} lines left out (TESSERA_MAX_LOG_LINES) …` };
    return [...this.head, marker, ...tail];
  }
}
