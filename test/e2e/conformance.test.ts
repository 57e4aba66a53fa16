import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { componentArchive } from '../helpers/components.js';
import { createConformance } from '../helpers/conformance.js';
import { openFreshDb } from '../helpers/db.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// Every operation of the served /openapi.json, called with a success and with an error, each
// answer checked strictly against the document (its status declared, its body as declared, no
// undeclared property): what a generated client or a validating proxy would see. One engine: the
// answers' shapes do not depend on the database.

const SLEEPER = { name: 'sleeper', type: 'app' as const, entrypoint: 'main.py', code: 'import time\ntime.sleep(60)\n' };
const SPLITTER = { name: 'splitter', type: 'partitioner' as const, entrypoint: 'main.py', code: 'print("unused")\n' };

test('conformance: every operation, success and error, answers as /openapi.json declares', { timeout: 240_000 }, async () => {
  const { db, drop } = await openFreshDb('pglite');
  const tessera = await startTestTessera(db, { workerSlots: 2, authFailuresPerMinute: 1_000_000 });
  const source = http.createServer((_request, response) => response.end('red green blue red\n'.repeat(50)));
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  const sourceUrl = `http://127.0.0.1:${(source.address() as AddressInfo).port}/colours.txt`;
  const api = createConformance(tessera.url, tessera.apiKey);
  const operatorKey = tessera.operatorKey;
  const expect = async (status: number, method: string, route: string, options: Parameters<typeof api.call>[2] = {}) => {
    const answer = await api.call(method, route, options);
    assert.equal(answer.status, status, `${method} ${route}: ${JSON.stringify(answer.body)?.slice(0, 400)}`);
    return answer.body;
  };
  try {
    await expect(200, 'GET', '/healthz', { key: null });
    await expect(200, 'GET', '/v1/customer/info');
    await expect(401, 'GET', '/v1/customer/info', { key: null });

    // Keys and tokens.
    await expect(200, 'POST', '/v1/auth/access_token', { key: null, body: { apiKey: tessera.apiKey } });
    await expect(401, 'POST', '/v1/auth/access_token', { key: null, body: { apiKey: 'tsk_wrong' } });
    await expect(200, 'GET', '/v1/auth/user');
    await expect(401, 'GET', '/v1/auth/user', { key: 'tsk_wrong' });
    await expect(200, 'GET', '/v1/auth/keys');
    await expect(401, 'GET', '/v1/auth/keys', { key: null });
    const workerKey = await expect(200, 'POST', '/v1/auth/keys', { body: { scope: 'worker' } });
    await expect(400, 'POST', '/v1/auth/keys', { body: { scope: 'root' } });
    await expect(415, 'POST', '/v1/auth/keys', { raw: { data: 'scope=worker', contentType: 'text/plain' } });
    await expect(200, 'DELETE', `/v1/auth/keys/${workerKey.key.id}`);
    await expect(404, 'DELETE', '/v1/auth/keys/nosuchkey');

    // Templates, presets (with default_params and presets pushed by a developer).
    await expect(200, 'GET', '/v1/customer/jobs/templates');
    await expect(400, 'GET', '/v1/customer/jobs/templates?pagination.limit=0');
    await expect(200, 'POST', '/v1/dev/apps', { body: { data: await componentArchive(SLEEPER) } });
    await expect(400, 'POST', '/v1/dev/apps', { body: { data: 'not an archive' } });
    await expect(200, 'POST', '/v1/dev/engines', { body: { data: await componentArchive(SPLITTER) } });
    await expect(400, 'POST', '/v1/dev/engines', { body: { data: await componentArchive(SLEEPER) } });
    const pushed = await expect(200, 'POST', '/v1/dev/templates', {
      body: { id: 'sleepy', app: 'sleeper', partitioner: 'passthrough', assembler: 'passthrough', default_params: { app: { seconds: 60 } }, presets: [{ name: 'short', description: 'a short nap', params: { app: { seconds: 1 } } }] },
    });
    assert.equal(pushed.data.id, 'sleepy');
    await expect(400, 'POST', '/v1/dev/templates', { body: { id: 'twice', app: 'sleeper', partitioner: 'passthrough', assembler: 'passthrough', params: {}, default_params: {} } });
    const presets = await expect(200, 'GET', '/v1/customer/jobs/templates/sleepy/presets');
    assert.deepEqual(presets.presets, [{ name: 'short', description: 'a short nap', params: { app: { seconds: 1 } } }]);
    assert.deepEqual((await expect(200, 'GET', '/v1/customer/jobs/templates/word-count/presets')).presets, []);
    await expect(404, 'GET', '/v1/customer/jobs/templates/nosuch/presets');
    await expect(200, 'GET', '/v1/dev/templates');
    await expect(401, 'GET', '/v1/dev/templates', { key: null });
    await expect(200, 'GET', '/v1/dev/templates/sleepy');
    await expect(404, 'GET', '/v1/dev/templates/nosuch');
    for (const [group, tag] of [['apps', 'sleeper@1.0'], ['engines', 'splitter@1.0']] as const) {
      await expect(200, 'GET', `/v1/dev/${group}`);
      await expect(401, 'GET', `/v1/dev/${group}`, { key: null });
      await expect(200, 'GET', `/v1/dev/${group}/${tag}`);
      await expect(404, 'GET', `/v1/dev/${group}/nosuch@1.0`);
      await expect(200, 'POST', `/v1/dev/${group}/${tag}/deactivate`);
      await expect(404, 'POST', `/v1/dev/${group}/nosuch/deactivate`);
      await expect(200, 'POST', `/v1/dev/${group}/${tag}/activate`);
      await expect(404, 'POST', `/v1/dev/${group}/nosuch/activate`);
      await expect(200, 'GET', `/v1/dev/${group}/${tag}/status`);
      await expect(404, 'GET', `/v1/dev/${group}/nosuch/status`);
      await expect(200, 'GET', `/v1/dev/${group}/${tag}/download`);
      await expect(404, 'GET', `/v1/dev/${group}/nosuch/download`);
    }

    // A job's life: made with the template's default params, changed while NEW, run, followed.
    const made = await expect(200, 'POST', '/v1/customer/jobs', { body: { templateId: 'word-count', name: 'colours', dataSource: { dataSourceDescriptor: 'url', params: { url: sourceUrl } } } });
    const jobId = made.job.id as string;
    await expect(400, 'POST', '/v1/customer/jobs', { body: { name: 'no template' } });
    const sleepy = await expect(200, 'POST', '/v1/customer/jobs', { body: { templateId: 'sleepy' } });
    assert.deepEqual(sleepy.job.params.app, { seconds: 60 }, "the template's default_params fill params");
    await expect(200, 'GET', `/v1/customer/jobs/${jobId}`);
    await expect(404, 'GET', '/v1/customer/jobs/nosuch');
    await expect(200, 'PATCH', `/v1/customer/jobs/${jobId}/jobname`, { body: 'colours, counted' });
    await expect(404, 'PATCH', '/v1/customer/jobs/nosuch/jobname', { body: 'x' });
    await expect(200, 'PATCH', `/v1/customer/jobs/${jobId}/params`, { body: { partitioner: { chunks: 2 } } });
    await expect(404, 'PATCH', '/v1/customer/jobs/nosuch/params', { body: {} });
    await expect(200, 'PATCH', `/v1/customer/jobs/${jobId}/configs`, { body: { taskTimeout: '30' } });
    await expect(404, 'PATCH', '/v1/customer/jobs/nosuch/configs', { body: {} });
    await expect(200, 'PATCH', `/v1/customer/jobs/${jobId}/datasource`, { body: { dataSource: { dataSourceDescriptor: 'url', params: { url: sourceUrl } } } });
    await expect(404, 'PATCH', '/v1/customer/jobs/nosuch/datasource', { body: { dataSource: { dataSourceDescriptor: 'bypass' } } });
    await expect(200, 'POST', '/v1/customer/datasource/test', { body: { dataSource: { dataSourceDescriptor: 'url', params: { url: sourceUrl } }, listFiles: true } });
    await expect(400, 'POST', '/v1/customer/datasource/test', { body: { dataSource: { dataSourceDescriptor: 'carrier-pigeon' } } });
    await expect(200, 'POST', `/v1/customer/jobs/${jobId}/run`, { body: {} });
    await expect(404, 'POST', '/v1/customer/jobs/nosuch/run');
    await expect(200, 'POST', `/v1/customer/jobs/${sleepy.job.id}/run`);
    await waitFor('the sleeper to run', async () => (await api.call('POST', '/v1/customer/jobs/runningTasks', { body: { jobsIds: [sleepy.job.id] } })).body.jobsRunningTasks[sleepy.job.id] > 0);
    const running = await expect(200, 'POST', '/v1/customer/jobs/runningTasks', { body: { jobsIds: [sleepy.job.id, jobId] } });
    assert.equal(running.jobsRunningTasks[sleepy.job.id], 1);
    await expect(404, 'POST', '/v1/customer/jobs/runningTasks', { body: { jobsIds: [sleepy.job.id, 'nosuch'] } });
    await expect(400, 'POST', '/v1/customer/jobs/runningTasks', { body: { jobsIds: [] } });
    await expect(200, 'GET', `/v1/customer/jobs/${jobId}/events`);
    await expect(404, 'GET', '/v1/customer/jobs/nosuch/events');
    await expect(200, 'GET', '/v1/customer/events');
    await expect(401, 'GET', '/v1/customer/events', { key: null });
    await waitFor('the word count to complete', async () => (await api.call('GET', `/v1/customer/jobs/${jobId}`)).body.job.state === 'JOB_STATE_COMPLETE');
    const results = await expect(200, 'GET', `/v1/customer/jobs/${jobId}/results`);
    await expect(404, 'GET', '/v1/customer/jobs/nosuch/results');
    const link = new URL(results.results[0].link);
    await expect(200, 'GET', `${link.pathname}${link.search}`, { key: null });
    await expect(403, 'GET', `${link.pathname}?expires=1&signature=forged`, { key: null });
    await expect(200, 'GET', `/v1/customer/jobs/${jobId}/logs`);
    await expect(404, 'GET', '/v1/customer/jobs/nosuch/logs');
    await expect(200, 'POST', '/v1/customer/logs', { body: { jobId } });
    await expect(404, 'POST', '/v1/customer/logs', { body: { jobId: 'nosuch' } });
    await expect(200, 'GET', `/v1/customer/jobs/${jobId}/tasks`);
    await expect(404, 'GET', '/v1/customer/jobs/nosuch/tasks');
    await expect(200, 'GET', '/v1/customer/jobs?orderBy=name');
    await expect(400, 'GET', '/v1/customer/jobs?orderBy=colour');
    await expect(200, 'POST', '/v1/customer/jobs/filter', { body: { filters: [{ field: 'name', condition: 'FILTER_CONDITION_LIKE', value: 'colours%' }] } });
    await expect(400, 'POST', '/v1/customer/jobs/filter', { body: { filters: [{ field: 'createdAt', condition: 'FILTER_CONDITION_GT', value: 'last week' }] } });
    await expect(200, 'POST', `/v1/customer/jobs/${sleepy.job.id}/abort`);
    await expect(404, 'POST', '/v1/customer/jobs/nosuch/abort');
    await expect(200, 'DELETE', `/v1/customer/jobs/${jobId}`);
    await expect(404, 'DELETE', `/v1/customer/jobs/${jobId}`);

    // A file job: upload through its signed link, then say it is complete (both paths).
    for (const route of ['/v1/customer/jobs/{jobId}/uploadcompleted', '/v1/customer/jobs/uploadcompleted/{jobId}']) {
      const fileJob = await expect(200, 'POST', '/v1/customer/jobs', { body: { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'file' } } });
      const tempUrl = new URL(fileJob.job.dataSource.params.tempUrl);
      await expect(200, 'PUT', `${tempUrl.pathname}${tempUrl.search}`, { key: null, raw: { data: 'one two two\n', contentType: 'text/plain' } });
      await expect(403, 'PUT', `${tempUrl.pathname}?expires=1&signature=forged`, { key: null, raw: { data: 'x', contentType: 'text/plain' } });
      const method = route.includes('{jobId}/uploadcompleted') ? 'PATCH' : 'POST';
      await expect(200, method, route.replace('{jobId}', fileJob.job.id));
      await expect(404, method, route.replace('{jobId}', 'nosuch'));
    }

    // Secrets.
    await expect(200, 'POST', '/v1/auth/secrets', { body: { secret: { id: 'bucket-key', secretType: 'aws', accessKey: 'AKIAEXAMPLE' }, secretKey: 'very secret' } });
    await expect(400, 'POST', '/v1/auth/secrets', { body: { secret: { id: 'x', secretType: 'carrier-pigeon' }, secretKey: 'x' } });
    await expect(200, 'GET', '/v1/auth/secrets');
    await expect(401, 'GET', '/v1/auth/secrets', { key: null });
    await expect(200, 'DELETE', '/v1/auth/secrets/aws/bucket-key');
    await expect(404, 'DELETE', '/v1/auth/secrets/aws/bucket-key');

    // The async job view.
    const { accountId } = await expect(200, 'GET', '/v1/auth/user');
    const started = await expect(200, 'POST', `/v2/accounts/${accountId}/jobs/WordCountJob`, { body: { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url: sourceUrl } } } });
    await expect(400, 'POST', `/v2/accounts/${accountId}/jobs/WordCountJob`, { body: { name: 'no template' } });
    await expect(200, 'GET', `/v2/accounts/${accountId}/jobs/WordCountJob/${started.jobId}`);
    await expect(404, 'GET', `/v2/accounts/${accountId}/jobs/WordCountJob/${'0'.repeat(26)}`);
    await expect(200, 'DELETE', `/v2/accounts/${accountId}/jobs/WordCountJob/${started.jobId}`);
    await expect(404, 'DELETE', `/v2/accounts/${accountId}/jobs/WordCountJob/${'0'.repeat(26)}`);

    // Workers, and the operator's routes.
    await expect(200, 'GET', '/v1/customer/workers');
    await expect(401, 'GET', '/v1/customer/workers', { key: null });
    await expect(200, 'GET', '/v1/customer/stats?minutes=30');
    await expect(400, 'GET', '/v1/customer/stats?minutes=0');
    const account = await expect(200, 'POST', '/v1/operator/accounts', { key: operatorKey, body: { name: 'conformance', quotas: { maxSharedTasks: 4 } } });
    await expect(400, 'POST', '/v1/operator/accounts', { key: operatorKey, body: { quotas: { maxSharedTasks: -1 } } });
    await expect(200, 'GET', '/v1/operator/accounts', { key: operatorKey });
    await expect(401, 'GET', '/v1/operator/accounts');
    await expect(200, 'GET', `/v1/operator/accounts/${account.account.accountId}`, { key: operatorKey });
    await expect(404, 'GET', '/v1/operator/accounts/nosuch1', { key: operatorKey });
    await expect(200, 'PATCH', `/v1/operator/accounts/${account.account.accountId}`, { key: operatorKey, body: { disabled: true } });
    await expect(400, 'PATCH', `/v1/operator/accounts/${account.account.accountId}`, { key: operatorKey, body: { disabled: 'yes' } });
    await expect(200, 'GET', '/v1/operator/workers', { key: operatorKey });
    await expect(401, 'GET', '/v1/operator/workers');
    await expect(200, 'GET', '/v1/operator/keys', { key: operatorKey });
    await expect(401, 'GET', '/v1/operator/keys');
    const sharedToken = await expect(200, 'POST', '/v1/operator/keys', { key: operatorKey, body: { scope: 'worker' } });
    await expect(400, 'POST', '/v1/operator/keys', { key: operatorKey, body: { scope: 'customer' } });
    await expect(200, 'DELETE', `/v1/operator/keys/${sharedToken.key.id}`, { key: operatorKey });
    await expect(404, 'DELETE', '/v1/operator/keys/nosuch', { key: operatorKey });

    assert.deepEqual(api.unexercised(['Health_Check']), [], 'every operation called with a success and an error');
  } finally {
    source.close();
    await tessera.stop();
    await drop();
  }
});
