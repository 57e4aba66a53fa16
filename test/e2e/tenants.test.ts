import assert from 'node:assert/strict';
import { openApiDocument } from '../../src/api/openapi.js';
import { forEachEngine } from '../helpers/db.js';
import { checkResponse } from '../helpers/responses.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// Every customer endpoint × another account's key or token, or a missing/wrong credential:
// another account's job is a 404 everywhere, bad credentials a 401, and nothing leaks.

forEachEngine('tenant isolation matrix over every customer endpoint', async (db) => {
  // Hundreds of wrong credentials from one address on purpose: the throttle (abuse.test.ts) is raised out of the way.
  const tessera = await startTestTessera(db, { authFailuresPerMinute: 1_000_000 });
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
      const running = await tessera.call('POST', '/v1/customer/jobs/runningTasks', { jobsIds: [done] }, credential);
      assert.equal(running.status, 404, 'runningTasks names jobs in its body');
      assert.doesNotMatch(JSON.stringify(running.body), /secret/);
      const list = await tessera.call('GET', '/v1/customer/jobs', undefined, credential);
      assert.equal(list.body.pagination.total, 0);
      const filtered = await tessera.call('POST', '/v1/customer/jobs/filter', { filters: [{ field: 'name', condition: 'FILTER_CONDITION_LIKE', value: '%secret%' }] }, credential);
      assert.deepEqual(filtered.body.data, []);
      assert.equal((await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', jobId: fresh }, credential)).status, 404, 'cannot update via POST with jobId');
      // The overview's numbers count the account's own tasks only: none of the job that ran.
      const stats = await tessera.call('GET', '/v1/customer/stats', undefined, credential);
      assert.equal(stats.status, 200);
      checkResponse('get', '/v1/customer/stats', stats);
      assert.ok(stats.body.buckets.every((bucket: Record<string, unknown>) => bucket.tasksDone === 0 && bucket.tasksFailed === 0 && bucket.jobsFailed === 0 && bucket.queued === 0), JSON.stringify(stats.body.buckets.filter((bucket: { tasksDone: number }) => bucket.tasksDone)));
    }
    for (const credential of [mine.key, mine.token]) {
      assert.equal((await tessera.call('GET', `/v1/customer/jobs/${fresh}`, undefined, credential)).body.job.name, 'secret plans', 'the owner still sees it, unchanged');
      assert.equal((await tessera.call('GET', '/v1/customer/jobs', undefined, credential)).body.pagination.total, 2);
      const stats = (await tessera.call('GET', '/v1/customer/stats', undefined, credential)).body;
      assert.ok(stats.buckets.some((bucket: { tasksDone: number }) => bucket.tasksDone > 0), 'the owner\'s stats count its job');
    }
  } finally {
    await tessera.stop();
  }
});

// The identity endpoints of issue 29 across accounts and roles: keys, workers, the operator's
// routes. Each kind of credential opens only its own door; another account's key or worker is a
// 404 or simply not listed.
forEachEngine('tenant isolation over keys, workers and the operator routes; each credential only where it belongs', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 0, authFailuresPerMinute: 1_000_000 });
  try {
    const token = async (apiKey: string) => (await tessera.call('POST', '/v1/auth/access_token', { apiKey }, null)).body.token as string;
    // B's keys: a customer key and a worker token, whose worker registers in B's own pool.
    const madeKey = await tessera.call('POST', '/v1/auth/keys', {}, tessera.otherApiKey);
    const madeWorker = await tessera.call('POST', '/v1/auth/keys', { scope: 'worker' }, tessera.otherApiKey);
    assert.equal(madeKey.status, 200, JSON.stringify(madeKey.body));
    const worker = { id: 'worker-of-b', name: 'b-host-secret', slots: 1, cpus: 1, memoryGb: 1, region: '', gpus: [], containers: false, hostImages: [] };
    const registered = await fetch(`${tessera.url}/v1/worker/register`, { method: 'POST', headers: { authorization: `Bearer ${madeWorker.body.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(worker) });
    assert.equal(registered.status, 200, await registered.text());

    for (const credential of [tessera.apiKey, await token(tessera.apiKey)]) {
      // A lists only its own keys and workers; B's key and worker are not there, and B's key is a 404.
      const keys = await tessera.call('GET', '/v1/auth/keys', undefined, credential);
      assert.equal(keys.status, 200);
      assert.ok(!keys.body.keys.some((key: { id: string }) => [madeKey.body.key.id, madeWorker.body.key.id].includes(key.id)));
      for (const keyId of [madeKey.body.key.id, madeWorker.body.key.id]) {
        const revoked = await tessera.call('DELETE', `/v1/auth/keys/${keyId}`, undefined, credential);
        assert.equal(revoked.status, 404, `revoking B's key ${keyId} as A`);
        checkResponse('delete', '/v1/auth/keys/{keyId}', revoked);
      }
      const workers = await tessera.call('GET', '/v1/customer/workers', undefined, credential);
      assert.equal(workers.status, 200);
      assert.doesNotMatch(JSON.stringify(workers.body), /worker-of-b|b-host-secret/);
      // A customer is no operator, with its key or its token.
      for (const [method, route] of [['GET', '/v1/operator/accounts'], ['POST', '/v1/operator/accounts'], ['PATCH', '/v1/operator/accounts/x1'], ['GET', '/v1/operator/workers'], ['GET', '/v1/operator/keys'], ['POST', '/v1/operator/keys'], ['DELETE', '/v1/operator/keys/x1']] as const) {
        const answer = await tessera.call(method, route, method === 'GET' || method === 'DELETE' ? undefined : {}, credential);
        assert.equal(answer.status, 401, `${method} ${route} as a customer → ${answer.status}`);
        assert.equal(answer.body.code, 16);
      }
    }
    // B still sees its own worker and keys, unchanged.
    assert.match(JSON.stringify((await tessera.call('GET', '/v1/customer/workers', undefined, tessera.otherApiKey)).body), /worker-of-b/);
    assert.equal((await tessera.call('GET', '/v1/auth/keys', undefined, tessera.otherApiKey)).body.keys.filter((key: { revokedAt?: string }) => !key.revokedAt).length, 3);

    // An operator key and a worker token open neither the customer API nor each other's routes.
    const operatorToken = await tessera.call('POST', '/v1/auth/access_token', { apiKey: tessera.operatorKey }, null);
    assert.equal(operatorToken.status, 401, 'an operator key mints no customer token');
    for (const [credential, route] of [[tessera.operatorKey, '/v1/customer/jobs'], [tessera.operatorKey, '/v1/auth/keys'], [madeWorker.body.apiKey, '/v1/customer/jobs'], [madeWorker.body.apiKey, '/v1/operator/accounts'], [madeWorker.body.apiKey, '/v1/auth/keys']]) {
      const answer = await tessera.call('GET', route, undefined, credential);
      assert.equal(answer.status, 401, `GET ${route} with the wrong kind of credential → ${answer.status}`);
    }
    const asCustomerOnWorkerRoute = await fetch(`${tessera.url}/v1/worker/register`, { method: 'POST', headers: { authorization: `Bearer ${tessera.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ ...worker, id: 'impostor' }) });
    assert.equal(asCustomerOnWorkerRoute.status, 401, 'a customer key is no worker token');
    // The operator sees every worker, B's included.
    assert.match(JSON.stringify((await tessera.call('GET', '/v1/operator/workers', undefined, tessera.operatorKey)).body), /worker-of-b/);
  } finally {
    await tessera.stop();
  }
});
