import type { LogLevel } from '../domain/worker-link.js';

// The level of a task's output line, read from what the line says: python logging's default
// format ("INFO:root:msg"), "LEVEL msg", "[level] msg", "level=info", a JSON "level" field, each
// perhaps after a timestamp. A line that names no level is INFO on stdout and UNKNOWN on stderr:
// python's logging writes its INFO lines to stderr too, so stderr alone says nothing of severity.

const LEVEL_WORDS: Record<string, LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  notice: 'INFO',
  warn: 'WARN',
  warning: 'WARN',
  error: 'ERROR',
  err: 'ERROR',
  fatal: 'FATAL',
  critical: 'FATAL',
  panic: 'PANIC',
};
const WORDS = Object.keys(LEVEL_WORDS).join('|');

/** "2026-12-07 22:15:39,123", "2026-12-07T22:15:39.1Z", "[22:15:39]" and the like, with what separates it from the rest. */
const TIMESTAMP = /^\[?(?:\d{4}-\d{2}-\d{2}[T ])?\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\]?[\s|:-]*/;
// Any case where the form makes it a level: bracketed, followed by a colon, or level=…; upper case
// only when followed by a space or separator, so "Information" or "error handling done" are prose.
const TAGGED = new RegExp(`^(?:[[<(](${WORDS})[\\]>)]|(?:level|lvl|severity)=["']?(${WORDS})\\b|(${WORDS}):)`, 'i');
const UPPER = new RegExp(`^(${WORDS.toUpperCase()})(?=$|[\\s:|\\-\\]])`);
// After a timestamp the level often follows a logger name ("… - app.db - WARNING - msg").
const AFTER_NAME = new RegExp(`^(?:[\\w.\\[\\]-]+\\s+-\\s+)?(?:[[<(]?)(${WORDS.toUpperCase()})(?=$|[\\s:|\\-\\]>)])`);
const JSON_LEVEL = new RegExp(`^\\{.*?"(?:level|levelname|severity)"\\s*:\\s*"(${WORDS})"`, 'i');
const TRACEBACK = /^(?:Traceback \(most recent call last\):|During handling of the above exception|The above exception was the direct cause)/;

/** The level a line names, or undefined when it names none. */
export function namedLevel(line: string): LogLevel | undefined {
  const json = JSON_LEVEL.exec(line);
  if (json) return LEVEL_WORDS[json[1]!.toLowerCase()];
  const stamp = TIMESTAMP.exec(line);
  const rest = stamp ? line.slice(stamp[0].length) : line;
  const match = TAGGED.exec(rest) ?? UPPER.exec(rest) ?? (stamp ? AFTER_NAME.exec(rest) : null);
  const word = match?.slice(1).find((group) => group !== undefined);
  return word ? LEVEL_WORDS[word.toLowerCase()] : undefined;
}

/**
 * Levels of one stream's lines in order. A multi-line record keeps its first line's level: an
 * indented or empty line continues the line before it, and a python traceback is ERROR down to
 * its exception line.
 */
export class LevelReader {
  private previous: LogLevel | undefined;
  private inTraceback = false;

  constructor(private readonly stream: 'stdout' | 'stderr') {}

  levelOf(line: string): LogLevel {
    const level = this.read(line);
    this.previous = level;
    return level;
  }

  private read(line: string): LogLevel {
    if (TRACEBACK.test(line)) {
      this.inTraceback = true;
      return 'ERROR';
    }
    const continues = line.length === 0 || line.startsWith(' ') || line.startsWith('\t');
    if (this.inTraceback) {
      // The first unindented line after the frames is the exception ("ValueError: bad input").
      if (!continues) this.inTraceback = false;
      return 'ERROR';
    }
    if (continues && this.previous) return this.previous;
    return namedLevel(line) ?? (this.stream === 'stdout' ? 'INFO' : 'UNKNOWN');
  }
}

/** The level of a line seen on its own (no line before it). */
export function levelOf(line: string, stream: 'stdout' | 'stderr'): LogLevel {
  return new LevelReader(stream).levelOf(line);
}
