import assert from 'node:assert/strict';
import { openApiDocument } from '../../src/api/openapi.js';
import { forEachEngine } from '../helpers/db.js';
import { checkResponse } from '../helpers/responses.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// Every customer endpoint × another account's key or token, or a missing/wrong credential:
// another account's job is a 404 everywhere, bad credentials a 401, and nothing leaks.

forEachEngine('tenant isolation matrix over every customer endpoint', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    const token = async (apiKey: string) => (await tessera.call('POST', '/v1/auth/access_token', { apiKey }, null)).body.token as string;
    const mine = { key: tessera.apiKey, token: await token(tessera.apiKey) };
    const theirs = { key: tessera.otherApiKey, token: await token(tessera.otherApiKey) };
    const fresh = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', name: 'secret plans' })).body.job.id;
    const done = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', name: 'secret results' })).body.job.id;
    await tessera.call('POST', `/v1/customer/jobs/${done}/run`);
    await waitFor('the job to complete', async () => (await tessera.call('GET', `/v1/customer/jobs/${done}`)).body.job.state === 'JOB_STATE_COMPLETE');

    // Every operation under /v1/customer that names a job, from the document itself.
    const jobOperations = Object.entries(openApiDocument().paths as Record<string, Record<string, unknown>>)
      .filter(([route]) => route.startsWith('/v1/customer/') && route.includes('{jobId}'))
      .flatMap(([route, item]) => Object.keys(item).map((method) => [method.toUpperCase(), route] as const));
    assert.equal(jobOperations.length, 14, 'get, delete, results, 4 updates, run, abort, logs, tasks, events, uploadcompleted (two paths)');
    const bodies: Record<string, unknown> = { jobname: 'stolen', configs: { taskTimeout: 5 }, params: { app: {} }, datasource: { dataSource: { dataSourceDescriptor: 'bypass' } } };
    for (const jobId of [fresh, done]) {
      for (const [method, route] of jobOperations) {
        const path = route.replace('{jobId}', jobId);
        const body = bodies[route.split('/').pop()!];
        for (const credential of [theirs.key, theirs.token]) {
          const answer = await tessera.call(method, path, body, credential);
          assert.equal(answer.status, 404, `${method} ${path} as another account → ${answer.status}`);
          checkResponse(method, route, answer);
          assert.doesNotMatch(JSON.stringify(answer.body), /secret/);
        }
        for (const credential of [null, '', 'tsk_nope', 'tst_nope.nope', `${mine.key}x`]) {
          const answer = await tessera.call(method, path, body, credential);
          assert.equal(answer.status, 401, `${method} ${path} with ${JSON.stringify(credential)} → ${answer.status}`);
          assert.equal(answer.body.code, 16);
        }
      }
    }
    for (const credential of [theirs.key, theirs.token]) {
      const logs = await tessera.call('POST', '/v1/customer/logs', { jobId: done }, credential);
      assert.equal(logs.status, 404, 'POST /v1/customer/logs names the job in its body');
      const list = await tessera.call('GET', '/v1/customer/jobs', undefined, credential);
      assert.equal(list.body.pagination.total, 0);
      const filtered = await tessera.call('POST', '/v1/customer/jobs/filter', { filters: [{ field: 'name', condition: 'FILTER_CONDITION_LIKE', value: '%secret%' }] }, credential);
      assert.deepEqual(filtered.body.data, []);
      assert.equal((await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', jobId: fresh }, credential)).status, 404, 'cannot update via POST with jobId');
    }
    for (const credential of [mine.key, mine.token]) {
      assert.equal((await tessera.call('GET', `/v1/customer/jobs/${fresh}`, undefined, credential)).body.job.name, 'secret plans', 'the owner still sees it, unchanged');
      assert.equal((await tessera.call('GET', '/v1/customer/jobs', undefined, credential)).body.pagination.total, 2);
    }
  } finally {
    await tessera.stop();
  }
});
