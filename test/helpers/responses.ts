import assert from 'node:assert/strict';
import { createResponseValidator } from '../../src/api/validation.js';

// Checks an HTTP answer against the response schema the OpenAPI document gives for that
// operation and status, literally (seed types as declared) and strictly: a property the document
// does not declare is an error, as it is to a generated client.

const validator = createResponseValidator(undefined, { strict: true });

export function checkResponse(method: string, pathTemplate: string, answer: { status: number; body: unknown }): void {
  // Every operation of a family declares the same error body; check errors against that family's GET.
  const errorReference = pathTemplate.startsWith('/v2/') ? '/v2/accounts/{accountId}/jobs/{jobType}/{jobId}' : '/v1/customer/jobs/{jobId}';
  const [checkedMethod, checkedPath] = answer.status >= 400 ? ['get', errorReference] : [method, pathTemplate];
  const errors = validator.check(checkedMethod, checkedPath, answer.status, answer.body);
  assert.deepEqual(errors, [], `${method.toUpperCase()} ${pathTemplate} → ${answer.status} does not match the OpenAPI document: ${JSON.stringify(answer.body).slice(0, 500)}`);
}
