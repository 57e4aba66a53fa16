import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openApiDocument, operations, seedDocument } from '../../src/api/openapi.js';
import { createRequestValidator, createResponseValidator } from '../../src/api/validation.js';
import { TesseraError } from '../../src/domain/errors.js';

// The served document is the seed under /v1/customer, every field of it kept as it is, with
// Tessera's additions beside them (fields, error answers), plus Tessera's operations; requests are
// validated from it.

/** Every field of `seed` is in `served` with the same value; `served` may add fields. An empty seed schema ({}) may be given one. */
function assertExtends(served: unknown, seed: unknown, where: string): void {
  if (seed && typeof seed === 'object' && !Array.isArray(seed)) {
    assert.ok(served && typeof served === 'object' && !Array.isArray(served), `${where} is no longer an object`);
    for (const [key, value] of Object.entries(seed)) {
      if (key === 'schema' && Object.keys(value as object).length === 0) continue;
      assert.ok(key in (served as object), `${where}.${key} is gone`);
      assertExtends((served as Record<string, unknown>)[key], value, `${where}.${key}`);
    }
    return;
  }
  assert.deepEqual(served, seed, where);
}

test('the document holds every field of the seed under /v1/customer, plus our fields and operations', () => {
  const seed = seedDocument();
  const document = openApiDocument();
  for (const [route, item] of Object.entries(seed.paths as Record<string, Record<string, unknown>>)) {
    for (const [method, operation] of Object.entries(item)) assertExtends(document.paths[`/v1/customer${route}`][method], operation, `${method} ${route}`);
  }
  for (const [name, schema] of Object.entries(seed.components.schemas)) assertExtends(document.components.schemas[name], schema, name);
  // What was added to the seed's schemas: fields beside its own, and open objects declared open.
  assert.deepEqual(document.components.schemas.jobJob.properties.usage, { $ref: '#/components/schemas/tesseraJobUsage' });
  assert.deepEqual(Object.keys(document.components.schemas.jobJobConfig.properties), ['taskTimeout', 'jobTimeout', 'isTestJob', 'maxTaskRetries', 'workerPool']);
  assert.deepEqual(document.components.schemas.jobAppParams.properties.app.additionalProperties, {});
  const ids = [...operations(document).keys()];
  for (const id of ['Customer_CreateJob', 'Customer_RunJob', 'Customer_AbortJob', 'Customer_DeleteJob', 'Customer_GetTemplates', 'Files_Download', 'Customer_GetRunningTasks', 'Customer_GetTemplatePresets', 'Customer_GetInfo']) assert.ok(ids.includes(id), id);
  assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  // Every reference resolves.
  const refs = JSON.stringify(document).match(/"\$ref":"#\/components\/schemas\/[^"]+"/g) ?? [];
  for (const ref of refs) assert.ok(document.components.schemas[ref.split('/').pop()!.replace('"', '')], ref);
});

test('every operation describes its error answers as rpcStatus (the async view as asyncError)', () => {
  const document = openApiDocument();
  for (const [id, { path, operation }] of operations(document)) {
    const statuses = Object.keys(operation.responses).filter((status) => Number(status) >= 400);
    if (id === 'Health_Check') continue;
    for (const status of ['400', '500', '503']) assert.ok(statuses.includes(status), `${id} declares ${status}`);
    if (path.includes('{')) assert.ok(statuses.includes('404'), `${id} declares 404`);
    if (operation.requestBody?.content?.['application/json']) assert.ok(statuses.includes('413') && statuses.includes('415'), `${id} declares 413 and 415`);
    for (const status of statuses) {
      const response = operation.responses[status];
      assert.ok(response.description, `${id} ${status} says when`);
      for (const media of Object.values(response.content ?? {}) as { schema: { $ref?: string } }[]) {
        assert.equal(media.schema.$ref, path.startsWith('/v2/') ? '#/components/schemas/asyncError' : '#/components/schemas/rpcStatus', `${id} ${status}`);
      }
    }
  }
});

function rejects(run: () => unknown, field: string, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof TesseraError);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.equal(error.fieldViolations[0]?.field, field);
    assert.match(error.message, message);
    return true;
  });
}

test('requests: int64 as a number or a string of digits; clear errors naming the field', () => {
  const validate = createRequestValidator();
  validate.body('Customer_SetJobPreferences', { taskTimeout: 10, jobTimeout: '3600', isTestJob: true });
  validate.body('Customer_CreateJob', { templateId: 'word-count', config: { maxTaskRetries: '3' } });
  validate.body('Customer_SetJobName', 'a name');
  validate.body('Customer_RunJob', undefined);
  assert.deepEqual(validate.query('Customer_GetAll', { 'pagination.limit': '10', other: 'ignored' }), { 'pagination.limit': '10' });

  rejects(() => validate.body('Customer_SetJobPreferences', { taskTimeout: '1e3' }), 'taskTimeout', /"1e3" must be an integer/);
  rejects(() => validate.body('Customer_SetJobPreferences', { isTestJob: 'yes' }), 'isTestJob', /must be a boolean/);
  rejects(() => validate.body('Customer_SetJobPreferences', undefined), 'body', /required/);
  rejects(() => validate.body('Customer_CreateJob', { name: 'x' }), 'templateId', /templateId is required/);
  rejects(() => validate.body('Customer_CreateJob', { templateId: 'x', colour: 'red' }), 'colour', /unknown field "colour"[\s\S]*/);
  rejects(() => validate.body('Customer_CreateJob', { templateId: 'x', priority: 'NOW' }), 'priority', /"NOW" is not one of EXECUTION_PRIORITY_UNDEFINED/);
  rejects(() => validate.body('Customer_GetAllFiltered', { filters: [{ field: 'state', condition: 'SOMETIMES' }] }), 'filters[0].condition', /SOMETIMES/);
  rejects(() => validate.body('Customer_SetJobName', 42), 'body', /must be a string/);
  rejects(() => validate.query('Customer_GetAll', { 'pagination.limit': 'ten' }), 'pagination.limit', /"ten" must be an integer/);
  rejects(() => validate.body('Customer_RunJob', { config: { taskTimeout: 1 }, speed: 'fast' }), 'speed', /unknown field/);
});

test('responses are checked literally against the document', () => {
  const check = createResponseValidator().check;
  const job = { id: 'J', state: 'JOB_STATE_NEW', config: { taskTimeout: 10 }, numChunks: 1, stateTimestamps: { JOB_STATE_NEW: '2026-01-01T00:00:00.000Z' } };
  assert.deepEqual(check('get', '/v1/customer/jobs/{jobId}', 200, { job }), []);
  assert.notDeepEqual(check('get', '/v1/customer/jobs/{jobId}', 200, { job: { ...job, state: 'JOB_STATE_RUNNING' } }), []);
  assert.notDeepEqual(check('get', '/v1/customer/jobs/{jobId}', 200, { job: { ...job, config: { taskTimeout: '10' } } }), [], 'responses are not relaxed');
  assert.notDeepEqual(check('get', '/v1/customer/jobs/{jobId}', 404, { error: 'nope' }), [], 'errors are rpcStatus');
  assert.deepEqual(check('get', '/v1/customer/jobs/{jobId}', 404, { code: 5, message: 'not found', details: [] }), []);
});
