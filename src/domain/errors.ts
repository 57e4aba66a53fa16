// One error type for the whole code base. Every failure a caller can act on is a TesseraError
// with a gRPC-style code, a message that names the bad value, and a hint saying what to do.
// src/api/errors.ts is the only place that turns it into HTTP.

export type ErrorCode =
  | 'CANCELLED'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'UNIMPLEMENTED'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED';

export interface FieldViolation {
  field: string;
  description: string;
}

export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly fieldViolations: FieldViolation[];
  /** When to try again, for a refusal that passes (said in a Retry-After header). */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; field?: string; cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TesseraError';
    this.code = code;
    this.hint = options.hint;
    this.fieldViolations = options.field ? [{ field: options.field, description: message }] : [];
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export const invalidArgument = (field: string, message: string, hint?: string): TesseraError =>
  new TesseraError('INVALID_ARGUMENT', message, { field, hint });

export const notFound = (what: string, id: string, hint?: string): TesseraError =>
  new TesseraError('NOT_FOUND', `${what} ${JSON.stringify(id)} was not found`, { hint });

export const failedPrecondition = (message: string, hint?: string): TesseraError =>
  new TesseraError('FAILED_PRECONDITION', message, { hint });

export const unauthenticated = (message: string, hint?: string): TesseraError =>
  new TesseraError('UNAUTHENTICATED', message, { hint });

export function isTesseraError(error: unknown): error is TesseraError {
  return error instanceof TesseraError;
}

export function assertNever(value: never, what = 'value'): never {
  throw new TesseraError('INTERNAL', `unexpected ${what}: ${JSON.stringify(value)}`);
}

/** Quotes a user-supplied value for an error message without letting a huge value flood it. */
export function quote(value: unknown, max = 80): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
}
