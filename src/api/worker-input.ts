import { invalidArgument, quote } from '../domain/errors.js';
import type { LogLine } from '../domain/worker-link.js';
import { LOG_LEVELS } from '../domain/worker-link.js';

// Checks of what worker agents send, shared by the worker routes: each refusal names the field,
// the value it got and what it must be.

/** Characters one log line may have: a worker cuts lines at 4,096; the server checks. */
export const MAX_LINE_CHARS = 8192;

export function object(body: unknown, field = 'body'): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidArgument(field, field === 'body' ? 'the body must be a JSON object' : `${field} ${quote(body)} must be a JSON object`);
  }
  return body as Record<string, unknown>;
}

export function number(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) throw invalidArgument(field, `${field} ${quote(value)} must be a number from ${min} to ${max}`);
  return value;
}

export function text(value: unknown, field: string, max = 256): string {
  if (typeof value !== 'string' || value.length > max) throw invalidArgument(field, `${field} ${quote(value)} must be a string of at most ${max} characters`);
  return value;
}

/** A list of at most `max` log lines `{at, stream, level, line}` (absent: none). */
export function logLinesOf(raw: unknown, field: string, max: number): LogLine[] {
  const lines = raw === undefined ? [] : raw;
  if (!Array.isArray(lines) || lines.length > max) throw invalidArgument(field, `${field} must be a list of at most ${max} lines {at, stream, level, line}`, Array.isArray(lines) ? `send ${lines.length} lines in ${Math.ceil(lines.length / max)} calls` : undefined);
  return lines.map((entry, index): LogLine => {
    const here = `${field}[${index}]`;
    const line = object(entry, here);
    const at = text(line.at, `${here}.at`, 40);
    if (Number.isNaN(Date.parse(at))) throw invalidArgument(`${here}.at`, `${here}.at ${quote(at)} is not a date-time`, 'send an RFC 3339 time such as 2026-12-07T22:15:39.123Z');
    if (line.stream !== 'stdout' && line.stream !== 'stderr') throw invalidArgument(`${here}.stream`, `${here}.stream ${quote(line.stream)} must be "stdout" or "stderr"`);
    if (!LOG_LEVELS.includes(line.level as never)) throw invalidArgument(`${here}.level`, `${here}.level ${quote(line.level)} must be one of ${LOG_LEVELS.join(', ')}`);
    return { at, stream: line.stream, level: line.level as LogLine['level'], line: text(line.line, `${here}.line`, MAX_LINE_CHARS).replaceAll('\u0000', '') };
  });
}
