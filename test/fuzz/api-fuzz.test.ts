import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { openApiDocument, operations } from '../../src/api/openapi.js';
import { createResponseValidator } from '../../src/api/validation.js';
import { openFreshDb } from '../helpers/db.js';
import { startTestTessera } from '../helpers/tessera.js';

// Malformed and hostile requests generated from the OpenAPI document, against every operation:
// bodies shaped like the schema with fields swapped for hostile values, arbitrary JSON, broken
// JSON, odd content types, hostile path and query values, wrong credentials. The server must
// never answer 5xx, every error must be an rpcStatus, and it must still answer afterwards.

const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 50_000);
const CONCURRENCY = 16;
const SEED = Number(process.env.FUZZ_SEED ?? 20261124);

type Json = Record<string, any>;
const document = openApiDocument();
const schemas = document.components.schemas as Json;

const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.constantFrom("' OR '1'='1", "'; DROP TABLE jobs; --", '%', '_', '%_%', '\\', '../../../etc/passwd', '..%2F..%2Fetc%2Fpasswd', '\u0000', '\ud800', '__proto__', 'constructor', '${7*7}', '<script>alert(1)</script>', 'JOB_STATE_NEW', '9223372036854775808', '-1', '1e309', 'NaN'),
  fc.integer({ min: 1000, max: 20_000 }).map((length) => 'x'.repeat(length)),
);

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.constantFrom(null, true, false, -1, 0, 2 ** 63, Number.MAX_SAFE_INTEGER, [], {}),
  fc.jsonValue({ maxDepth: 3 }),
  fc.constant({ __proto__: { polluted: true } }),
  fc.constant(JSON.parse('{"__proto__": {"polluted": true}}')),
  fc.constant({ constructor: { prototype: { polluted: true } } }),
);

/** Values shaped by a schema (sometimes valid, often not). */
function fromSchema(schema: Json | undefined, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 4) return hostileValue;
  if (schema.$ref) return fromSchema(schemas[String(schema.$ref).split('/').pop()!], depth + 1);
  if (schema.enum) return fc.oneof(fc.constantFrom(...(schema.enum as unknown[])), hostileValue);
  if (/int64/.test(schema.format ?? '')) return fc.oneof(fc.integer({ min: -10, max: 1_000_000 }), fc.integer({ min: 0, max: 99999 }).map(String), hostileValue);
  switch (schema.type) {
    case 'object': {
      const properties = Object.entries((schema.properties ?? {}) as Json);
      if (properties.length === 0) return fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), hostileValue);
      const shaped = fc.record(Object.fromEntries(properties.map(([name, property]) => [name, fromSchema(property, depth + 1)])), { requiredKeys: [] });
      // Occasionally one field replaced, or an unknown one added.
      return fc.oneof({ weight: 6, arbitrary: shaped }, { weight: 1, arbitrary: fc.tuple(shaped, fc.string({ maxLength: 12 }), hostileValue).map(([value, key, bad]) => ({ ...(value as Json), [key]: bad })) }, { weight: 1, arbitrary: hostileValue });
    }
    case 'array':
      return fc.oneof(fc.array(fromSchema(schema.items, depth + 1), { maxLength: 4 }), hostileValue);
    case 'string':
      return fc.oneof(fc.string({ maxLength: 30 }), hostileString);
    case 'integer':
    case 'number':
      return fc.oneof(fc.integer(), fc.double(), hostileValue);
    case 'boolean':
      return fc.oneof(fc.boolean(), hostileValue);
    default:
      return hostileValue;
  }
}

/** Lone surrogates replaced (String.prototype.toWellFormed, which this TypeScript lib does not declare). */
function wellFormed(value: string): string {
  return value.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

interface FuzzRequest {
  method: string;
  path: string;
  template: string;
  headers: Record<string, string>;
  body: string | undefined;
}

function requests(credentials: { key: string; otherKey: string; operatorKey: string; jobIds: string[]; accountIds: string[] }): fc.Arbitrary<FuzzRequest> {
  const byOperation = [...operations(document).values()].map(({ method, path: template, operation }) => {
    const bodySchema = operation.requestBody?.content?.['application/json']?.schema as Json | undefined;
    const queryNames = ((operation.parameters ?? []) as Json[]).filter((parameter) => parameter.in === 'query').map((parameter) => parameter.name as string);
    // The operator's routes are fuzzed as the operator (any other credential is simply refused).
    const operatorRoute = template.startsWith('/v1/operator/');
    const pathValue = fc.oneof(fc.constantFrom(...(operatorRoute ? credentials.accountIds : credentials.jobIds)), hostileString.filter((value) => value.length > 0 && value.length < 3000));
    const query = fc.array(fc.tuple(fc.constantFrom(...queryNames, 'pagination.limit', 'orderBy', 'unknown'), fc.oneof(hostileString, fc.integer().map(String))), { maxLength: 3 });
    const body = fc.oneof(
      { weight: 6, arbitrary: fromSchema(bodySchema).map((value) => JSON.stringify(value)) },
      { weight: 1, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value)) },
      { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
      { weight: 1, arbitrary: fc.constantFrom('{', '{"templateId":', '[1,2', 'null', '""', '{"__proto__":{"x":1}}', '{"a":'.repeat(500)) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    );
    const authorization = fc.oneof(
      { weight: 8, arbitrary: operatorRoute ? fc.constantFrom(`Bearer ${credentials.operatorKey}`, credentials.operatorKey) : fc.constantFrom(`Bearer ${credentials.key}`, credentials.key) },
      { weight: 2, arbitrary: fc.constantFrom(`Bearer ${credentials.otherKey}`, `Bearer ${operatorRoute ? credentials.key : credentials.operatorKey}`, '', 'Bearer', 'Bearer  ', 'Basic dXNlcjpwYXNz', 'tst_forged.token', `Bearer ${credentials.key}x`) },
      { weight: 1, arbitrary: hostileString.filter((value) => /^[\t\x20-\x7e]*$/.test(value) && value.length < 1000) },
    );
    const contentType = fc.oneof({ weight: 8, arbitrary: fc.constant('application/json') }, { weight: 2, arbitrary: fc.constantFrom('application/x-protobuf', 'text/plain', 'application/json; charset=latin1', 'multipart/form-data', 'application/jsonx') });
    // Sometimes raw escapes after the path: broken percent-encoding, encoded traversal, NUL.
    const rawTail = fc.oneof({ weight: 9, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('/%ZZ', '/..%2F..%2Fetc%2Fpasswd', '/%00', '/%2e%2e/%2e%2e', '%', '/../../v1/customer/jobs') });
    return fc.record({ pathValue, rawTail, query, body, authorization, contentType, methodSwap: fc.oneof({ weight: 9, arbitrary: fc.constant(method) }, { weight: 1, arbitrary: fc.constantFrom('get', 'post', 'patch', 'delete', 'put') }) }).map(
      ({ pathValue: value, rawTail: tail, query: pairs, body: payload, authorization: auth, contentType: type, methodSwap }): FuzzRequest => {
        // A URL cannot carry a lone surrogate; make the string well-formed before encoding it.
        const path = template.replace(/\{[^}]+\}/g, () => encodeURIComponent(wellFormed(value))) + tail;
        const search = new URLSearchParams(pairs.map(([name, given]): [string, string] => [name, wellFormed(given)])).toString();
        const headers: Record<string, string> = auth ? { authorization: auth } : {};
        if (payload !== undefined) headers['content-type'] = type;
        return { method: methodSwap.toUpperCase(), path: search ? `${path}?${search}` : path, template, headers, body: methodSwap === 'get' ? undefined : payload };
      },
    );
  });
  return fc.oneof(...byOperation);
}

test(`fuzz: ${REQUESTS} malformed and hostile requests across every operation, zero 5xx`, { timeout: 30 * 60_000 }, async () => {
  const { db, drop } = await openFreshDb('pglite');
  // No worker slots: jobs the fuzzer manages to start stay queued instead of running apps.
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  const validator = createResponseValidator();
  try {
    const jobIds: string[] = [];
    for (let index = 0; index < 3; index++) jobIds.push((await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count' })).body.job.id);
    jobIds.push((await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count' }, tessera.otherApiKey)).body.job.id);
    // An account of the fuzzer's own for the operator's routes to change, disable and enable.
    const accountIds = [(await tessera.call('POST', '/v1/operator/accounts', { name: 'fuzzed' }, tessera.operatorKey)).body.account.accountId as string];
    const samples = fc.sample(requests({ key: tessera.apiKey, otherKey: tessera.otherApiKey, operatorKey: tessera.operatorKey, jobIds, accountIds }), { numRuns: REQUESTS, seed: SEED });
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < samples.length) {
        const request = samples[next++]!;
        let status: number;
        let text: string;
        try {
          const response = await fetch(`${tessera.url}${request.path}`, { method: request.method, headers: request.headers, ...(request.body === undefined ? {} : { body: request.body }) });
          status = response.status;
          // An event stream stays open while its job runs: its status is the answer; hang up.
          if (/^text\/event-stream/.test(response.headers.get('content-type') ?? '')) {
            await response.body?.cancel();
            text = '';
          } else {
            text = await response.text();
          }
        } catch (error) {
          failures.push(`${request.method} ${request.path.slice(0, 100)}: the request failed: ${String(error)}`);
          continue;
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        const describe = () => `${request.method} ${request.path.slice(0, 100)} ${JSON.stringify(request.headers).slice(0, 100)} ${String(request.body).slice(0, 200)} → ${status} ${text.slice(0, 300)}`;
        if (status >= 500) failures.push(describe());
        else if (status >= 400 && request.path !== '/openapi.json') {
          // Errors are rpcStatus, except on the async job API (/v2), which has its own shape.
          const reference = request.path.startsWith('/v2/') ? '/v2/accounts/{accountId}/jobs/{jobType}/{jobId}' : '/v1/customer/jobs/{jobId}';
          const errors = validator.check('get', reference, status, JSON.parse(text));
          if (errors.length > 0) failures.push(`not the error shape of ${reference}: ${describe()}`);
        }
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (Date.now() - started) / 1000;
    const fiveHundreds = [...statuses].filter(([status]) => status >= 500).reduce((sum, [, count]) => sum + count, 0);
    console.log(`fuzz: ${samples.length} requests in ${seconds.toFixed(1)} s (seed ${SEED}); ${fiveHundreds} answered 5xx; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    // 5xx first: they are the worst news.
    failures.sort((left, right) => Number(/→ 5\d\d/.test(right)) - Number(/→ 5\d\d/.test(left)));
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} bad answers`);
    assert.equal(({} as Json).polluted, undefined, 'no prototype was polluted');
    assert.equal((await fetch(`${tessera.url}/healthz`)).status, 200, 'the server still answers');
    assert.equal((await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count' })).status, 200, 'and still works');
  } finally {
    await tessera.stop();
    await drop();
  }
});
