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

/**
 * How deeply objects and arrays may nest in a body. No field of the API goes past a handful of
 * levels, and code that walks a value recursively (params, the job draft) would overflow its
 * stack on a body nested tens of thousands deep.
 */
export const MAX_JSON_DEPTH = 64;

/** The first place `body` nests deeper than `max`, or -1. Strings are skipped; JSON.parse judges the rest. */
function tooDeepAt(body: string, max: number): number {
  let depth = 0;
  for (let index = 0; index < body.length; index++) {
    const code = body.charCodeAt(index);
    if (code === 0x22) {
      // Inside a string brackets are text: jump to its closing quote (one not escaped by an odd
      // run of backslashes). Strings are most of a body, and indexOf is far faster than a loop.
      for (;;) {
        const close = body.indexOf('"', index + 1);
        if (close < 0) return -1;
        let slashes = 0;
        while (body.charCodeAt(close - 1 - slashes) === 0x5c) slashes++;
        index = close;
        if (slashes % 2 === 0) break;
      }
    } else if (code === 0x7b || code === 0x5b) {
      if (++depth > max) return index;
    } else if (code === 0x7d || code === 0x5d) {
      depth--;
    }
  }
  return -1;
}

/** The parsed body; undefined for an empty one (POST …/run is often sent that way). */
export function parseJsonBody(body: string): unknown {
  if (body.trim() === '') return undefined;
  const deep = body.length > MAX_JSON_DEPTH ? tooDeepAt(body, MAX_JSON_DEPTH) : -1;
  if (deep >= 0) {
    throw new TesseraError('INVALID_ARGUMENT', `the request body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep (at character ${deep})`, { field: 'body', hint: 'no field of this API needs that; flatten the value' });
  }
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
