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

export class LogCollector {
  private readonly head: LogLine[] = [];
  private tail: LogLine[] = [];
  private omitted = 0;
  private readonly partial = { stdout: '', stderr: '' };

  constructor(private readonly maxLines: number) {}

  write(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const text = this.partial[stream] + chunk.toString('utf8');
    const lines = text.split('\n');
    this.partial[stream] = lines.pop()!;
    // A process that never writes a newline must not grow the buffer without bound.
    if (this.partial[stream].length > MAX_LINE_CHARS) {
      lines.push(this.partial[stream]);
      this.partial[stream] = '';
    }
    for (const line of lines) this.add(stream, line);
  }

  private add(stream: 'stdout' | 'stderr', raw: string): void {
    const line = raw.replace(/\r$/, '').replaceAll('\u0000', '');
    const entry: LogLine = { at: new Date().toISOString(), stream, level: levelOf(line, stream), line: line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line };
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
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream]) this.add(stream, this.partial[stream]);
      this.partial[stream] = '';
    }
    const keepTail = this.maxLines - Math.ceil(this.maxLines / 2);
    const omitted = this.omitted + Math.max(0, this.tail.length - keepTail);
    const tail = keepTail > 0 ? this.tail.slice(-keepTail) : [];
    if (omitted === 0) return [...this.head, ...tail];
    const marker: LogLine = { at: (tail[0] ?? this.head[this.head.length - 1])?.at ?? new Date().toISOString(), stream: 'stderr', level: 'WARN', line: `… ${omitted} lines left out (TESSERA_MAX_LOG_LINES) …` };
    return [...this.head, marker, ...tail];
  }
}
