import { TesseraError, quote } from '../domain/errors.js';

// Request bodies in JSON. Two things a body may not hold: a "__proto__" key (never a legitimate
// field here, and how prototype pollution starts) and a NUL character (PostgreSQL text cannot
// hold one), each refused with a message that names it.
//
// Checking every key and value means a reviver, and JSON.parse with a reviver is several times
// slower than without: on a worker agent's completion calls (thousands of tasks a second) it was
// a tenth of the server's CPU. Neither thing can be in a body without one of two pieces of text:
// a NUL only as the escape \u0000 (a raw control character is not valid JSON), and a
// "__proto__" key either spelled out or with an escape (\u005f…). A body with neither `\u` nor
// `__proto__` in its text is parsed plainly; any other goes through the reviver.

const NEEDS_REVIVER = /\\u|__proto__/;

/** The parsed body; undefined for an empty one (POST …/run is often sent that way). */
export function parseJsonBody(body: string): unknown {
  if (body.trim() === '') return undefined;
  try {
    return NEEDS_REVIVER.test(body) ? JSON.parse(body, refuseHostile) : JSON.parse(body);
  } catch (error) {
    if (error instanceof TesseraError) throw error;
    throw new TesseraError('INVALID_ARGUMENT', `the request body is not valid JSON: ${(error as Error).message}`, { field: 'body' });
  }
}

function refuseHostile(key: string, value: unknown): unknown {
  if (key === '__proto__') throw new TesseraError('INVALID_ARGUMENT', 'the request body holds a "__proto__" key', { field: 'body' });
  if ((typeof value === 'string' && value.includes('\u0000')) || key.includes('\u0000')) {
    throw new TesseraError('INVALID_ARGUMENT', `the request body holds a NUL character (\\u0000)${key ? ` in the field ${quote(key)}` : ''}`, { field: key || 'body' });
  }
  return value;
}
