import assert from 'node:assert/strict';
import { openApiDocument, operations } from '../../src/api/openapi.js';
import { createResponseValidator } from '../../src/api/validation.js';

// Calls through the served API that check every answer against the document strictly: the
// operation is found by method and path, the status must be one it declares, and a JSON body must
// match that status's schema with no undeclared property. Each call is counted for its operation,
// as a success or an error, so a suite can say which operations it never exercised.

type Json = Record<string, any>;

export interface ConformantAnswer {
  status: number;
  body: any;
  headers: Headers;
  operationId: string;
}

export interface CallOptions {
  /** An API key or token; null sends no Authorization header. */
  key?: string | null;
  body?: unknown;
  /** A body sent as it is (bytes or text), with its own content type. */
  raw?: { data: string | Uint8Array; contentType: string };
  headers?: Record<string, string>;
}

function pathPattern(template: string): RegExp {
  const pattern = template.split(/(\{[^}]+\})/).map((part) => {
    if (part === '{key}') return '(.+)';
    if (/^\{[^}]+\}$/.test(part)) return '([^/]+)';
    return part.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${pattern.join('')}$`);
}

export function createConformance(base: string, defaultKey: string) {
  const document = openApiDocument();
  const validator = createResponseValidator(document, { strict: true });
  // Literal paths before templated ones (/jobs/templates before /jobs/{jobId}).
  const known = [...operations(document).values()]
    .map(({ method, path, operation }) => ({ method, path, operation: operation as Json, pattern: pathPattern(path), holes: (path.match(/\{/g) ?? []).length }))
    .sort((left, right) => left.holes - right.holes);
  const seen = new Map<string, Set<'success' | 'error'>>();

  async function call(method: string, route: string, options: CallOptions = {}): Promise<ConformantAnswer> {
    const pathname = new URL(route, base).pathname;
    const found = known.find((candidate) => candidate.method === method.toLowerCase() && candidate.pattern.test(pathname));
    assert.ok(found, `the document has no operation for ${method} ${pathname}`);
    const key = options.key === undefined ? defaultKey : options.key;
    const headers: Record<string, string> = { ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...options.headers };
    let payload: string | Uint8Array | undefined;
    if (options.raw) {
      payload = options.raw.data;
      headers['content-type'] = options.raw.contentType;
    } else if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(new URL(route, base), { method, headers, ...(payload === undefined ? {} : { body: payload }) });
    const type = response.headers.get('content-type') ?? '';
    let body: unknown;
    if (type.startsWith('text/event-stream')) {
      await response.body?.cancel();
    } else if (type.includes('json')) {
      body = await response.json();
    } else {
      body = Buffer.from(await response.arrayBuffer());
    }
    const what = `${method} ${found.path} → ${response.status}`;
    const declared = found.operation.responses?.[String(response.status)];
    assert.ok(declared, `${what}: the document declares no ${response.status} for ${found.operation.operationId}: ${JSON.stringify(body)?.slice(0, 300)}`);
    if (declared.content?.['application/json']) {
      assert.ok(type.includes('json'), `${what}: declared as JSON, answered ${type}`);
      assert.deepEqual(validator.check(method, found.path, response.status, body), [], `${what}: not as the document says: ${JSON.stringify(body).slice(0, 600)}`);
    }
    const outcome = response.status < 400 ? 'success' : 'error';
    const marks = seen.get(found.operation.operationId) ?? new Set();
    marks.add(outcome);
    seen.set(found.operation.operationId, marks);
    return { status: response.status, body, headers: response.headers, operationId: found.operation.operationId };
  }

  return {
    call,
    /** Operations not yet called with a success, or with an error (unless `successOnly` lists them). */
    unexercised(successOnly: string[] = []): string[] {
      return known.flatMap(({ operation }) => {
        const marks = seen.get(operation.operationId) ?? new Set();
        const missing = [...(marks.has('success') ? [] : ['a success']), ...(marks.has('error') || successOnly.includes(operation.operationId) ? [] : ['an error'])];
        return missing.length > 0 ? [`${operation.operationId} (${missing.join(', ')})`] : [];
      });
    },
  };
}
