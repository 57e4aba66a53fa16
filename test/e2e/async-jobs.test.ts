import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../src/config/config.js';
import { silentLog } from '../../src/domain/log.js';
import { createWorker } from '../../src/worker/worker.js';
import { runtimeSettings, taskEnvironment } from '../../src/worker/run-task.js';
import { createRuntime } from '../../src/runner/create-runtime.js';
import { EMBEDDED_HOST_IMAGES } from '../../src/cli/start.js';
import { forEachEngine } from '../helpers/db.js';
import { installComponents, installTemplate } from '../helpers/components.js';
import { checkResponse } from '../helpers/responses.js';
import type { TestTessera } from '../helpers/tessera.js';
import { startTestTessera, testWorker, waitFor } from '../helpers/tessera.js';

// The Bytescale-style async job view (seed 004) over real jobs: every body checked against the
// schema written from the seed's fields and enums (asyncJobResponse in the OpenAPI document).

const VIEW = '/v2/accounts/{accountId}/jobs/{jobType}/{jobId}';
const SLEEPY_APP = `import json, os, time
time.sleep(json.loads(os.environ.get("APP_PARAMS") or "{}").get("seconds", 1))
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "done.txt"), "w").write("ok")
`;
const FAILING_APP = 'import sys\nsys.stderr.write("the model diverged\\n")\nsys.exit(2)\n';

async function view(tessera: TestTessera, accountId: string, jobType: string, jobId: string, method = 'GET', key?: string) {
  const answer = await tessera.call(method, `/v2/accounts/${accountId}/jobs/${jobType}/${jobId}`, undefined, key);
  checkResponse(method.toLowerCase(), VIEW, answer);
  return answer;
}

async function startWorker(tessera: TestTessera) {
  const link = tessera.engine.localLink(testWorker('late-worker'));
  // The server was started without slots, so without a runtime: this worker brings its own.
  const runtime = await createRuntime(runtimeSettings(tessera.config, EMBEDDED_HOST_IMAGES), silentLog);
  const worker = createWorker({
    link,
    slots: 2,
    env: taskEnvironment(tessera.config, link, runtime),
    log: silentLog,
    heartbeatMs: 1000,
  });
  worker.start();
  return worker;
}

forEachEngine('a job seen through the async view: Created → Pending → Running → Succeeded; Failed; Cancelling → Cancelled', async (db) => {
  // No worker slots at first, so the job is seen waiting (Pending) before one is started.
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  try {
    await installComponents(tessera, [
      { name: 'sleepy', type: 'app', entrypoint: 'main.py', code: SLEEPY_APP },
      { name: 'diverges', type: 'app', entrypoint: 'main.py', code: FAILING_APP },
    ]);
    await installTemplate(tessera, { id: 'sleepy', description: '', app: 'sleepy', partitioner: 'passthrough', assembler: 'passthrough', jobType: 'SleepJob', params: { app: { seconds: 1.5 } } });
    await installTemplate(tessera, { id: 'diverges', description: '', app: 'diverges', partitioner: 'passthrough', assembler: 'passthrough', config: { maxTaskRetries: 0 } });
    const user = await tessera.call('GET', '/v1/auth/user');
    checkResponse('get', '/v1/auth/user', user);
    const accountId: string = user.body.accountId;
    assert.match(accountId, /^[A-Za-z0-9]{7}$/);

    const jobId: string = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'sleepy' })).body.job.id;
    assert.match(jobId, /^[0-9A-HJKMNP-TV-Z]{26}$/, 'job ids are ULIDs');
    const seen: string[] = [];
    const look = async () => {
      const answer = await view(tessera, accountId, 'SleepJob', jobId);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      if (seen.at(-1) !== answer.body.status) seen.push(answer.body.status);
      return answer.body;
    };
    const created = await look();
    assert.equal(created.jobUrl, `${tessera.url}/v2/accounts/${accountId}/jobs/SleepJob/${jobId}`);
    assert.equal((await fetch(created.jobDocs)).status, 200, 'jobDocs is a real page');
    await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`);
    await look();
    worker = await startWorker(tessera);
    const running = await waitFor('Running', async () => {
      const body = await look();
      return body.status === 'Running' ? body : undefined;
    });
    assert.match(running.summary.progress.stage, /^(UPLOADING|PARTITIONING|PARTITIONED)$/);
    assert.equal(running.summary.progress.tasksDone, 0);
    const done = await waitFor('Succeeded', async () => {
      const body = await look();
      return body.status === 'Succeeded' ? body : undefined;
    });
    assert.deepEqual(seen, ['Created', 'Pending', 'Running', 'Succeeded']);
    assert.equal(done.summary.results[0].name, 'done.txt');
    assert.equal(await (await fetch(done.summary.results[0].link)).text(), 'ok');
    assert.ok(done.lastUpdated >= done.created);

    const failing: string = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'diverges' })).body.job.id;
    await tessera.call('POST', `/v1/customer/jobs/${failing}/run`);
    const failed = await waitFor('Failed', async () => {
      const answer = await view(tessera, accountId, 'ProcessFileJob', failing);
      return answer.body.status === 'Failed' ? answer.body : undefined;
    });
    assert.match(failed.summary.error, /the model diverged/);

    // A task held by some worker: cancelling waits for that worker to confirm the process stopped.
    await worker.stop();
    worker = undefined;
    const held: string = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'sleepy' })).body.job.id;
    await tessera.call('POST', `/v1/customer/jobs/${held}/run`);
    const link = tessera.engine.localLink(testWorker('remote-worker'));
    const [lease] = await link.lease(1, 5000);
    assert.equal(lease?.jobId, held);
    await link.enterStage(lease!, 'JOB_STATE_UPLOADING');
    assert.equal((await view(tessera, accountId, 'SleepJob', held)).body.status, 'Running');
    const cancelling = await view(tessera, accountId, 'SleepJob', held, 'DELETE');
    assert.equal(cancelling.status, 200, JSON.stringify(cancelling.body));
    assert.equal(cancelling.body.status, 'Cancelling');
    assert.deepEqual(await link.heartbeat([lease!]), [lease!.taskId], 'the worker learns its lease is gone');
    await link.stopped(lease!);
    assert.equal((await view(tessera, accountId, 'SleepJob', held)).body.status, 'Cancelled');
    const again = await view(tessera, accountId, 'SleepJob', held, 'DELETE');
    assert.equal(again.status, 400);
    assert.equal(again.body.code, 'failed_precondition');

    // A job that never started is cancelled too (not deleted) and is Cancelled at once.
    const unstarted: string = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'sleepy' })).body.job.id;
    assert.equal((await view(tessera, accountId, 'SleepJob', unstarted, 'DELETE')).body.status, 'Cancelled');
  } finally {
    await worker?.stop();
    await tessera.stop();
  }
});

forEachEngine('one-call start, and the documented errors: wrong account, unknown type, malformed ULID', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    const accountId: string = (await tessera.call('GET', '/v1/auth/user')).body.accountId;
    const otherAccount: string = (await tessera.call('GET', '/v1/auth/user', undefined, tessera.otherApiKey)).body.accountId;
    const started = await tessera.call('POST', `/v2/accounts/${accountId}/jobs/WordCountJob`, { templateId: 'word-count', params: { partitioner: { chunks: 2 } } });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    checkResponse('post', '/v2/accounts/{accountId}/jobs/{jobType}', started);
    assert.ok(['Pending', 'Running', 'Succeeded'].includes(started.body.status));
    const jobId: string = started.body.jobId;
    await waitFor('the started job to succeed', async () => (await view(tessera, accountId, 'WordCountJob', jobId)).body.status === 'Succeeded');

    const errors: [string, string, string | undefined, number, string][] = [
      ['GET', `/v2/accounts/${accountId}/jobs/WordCountJob/${jobId}`, tessera.otherApiKey, 404, 'not_found'],
      ['GET', `/v2/accounts/${otherAccount}/jobs/WordCountJob/${jobId}`, tessera.otherApiKey, 404, 'not_found'],
      ['GET', `/v2/accounts/${otherAccount}/jobs/WordCountJob/${jobId}`, undefined, 404, 'not_found'],
      ['DELETE', `/v2/accounts/${otherAccount}/jobs/WordCountJob/${jobId}`, tessera.otherApiKey, 404, 'not_found'],
      ['GET', `/v2/accounts/${accountId}/jobs/ProcessVideoJob/${jobId}`, undefined, 404, 'not_found'],
      ['GET', `/v2/accounts/${accountId}/jobs/WordCountJob/not-a-ulid`, undefined, 400, 'invalid_argument'],
      ['GET', `/v2/accounts/${accountId}/jobs/WordCountJob/${jobId.toLowerCase()}`, undefined, 400, 'invalid_argument'],
      ['GET', `/v2/accounts/${accountId}/jobs/Word-Count/${jobId}`, undefined, 400, 'invalid_argument'],
      ['GET', `/v2/accounts/${accountId}/jobs/WordCountJob/${jobId}`, 'tsk_wrong', 401, 'unauthenticated'],
      ['GET', `/v2/accounts/${accountId}/nothing-here`, undefined, 404, 'not_found'],
    ];
    for (const [method, route, key, status, code] of errors) {
      const answer = await tessera.call(method, route, undefined, key);
      assert.equal(answer.status, status, `${method} ${route} → ${answer.status} ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, code);
      assert.equal(answer.body.time.length, 24);
      checkResponse(method.toLowerCase(), VIEW, answer);
      assert.doesNotMatch(JSON.stringify(answer.body), /word-count example|counts\.json/, 'nothing about the job leaks');
    }
    const before = (await tessera.call('GET', '/v1/customer/jobs')).body.pagination.total;
    const wrongType = await tessera.call('POST', `/v2/accounts/${accountId}/jobs/ProcessVideoJob`, { templateId: 'word-count' });
    assert.equal(wrongType.status, 400);
    assert.match(wrongType.body.message, /makes WordCountJob jobs/);
    assert.equal((await tessera.call('POST', `/v2/accounts/${accountId}/jobs/WordCountJob`, { templateId: 'word-count', config: { taskTimeout: 'x' } })).body.code, 'invalid_argument');
    assert.equal((await tessera.call('GET', '/v1/customer/jobs')).body.pagination.total, before, 'a refused start leaves no job behind');

    // tessera whoami, as a real process against the real server.
    const whoami = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'tessera.js'), 'whoami', '--server', tessera.url, '--json'], { env: { PATH: process.env.PATH ?? '', TESSERA_API_KEY: tessera.apiKey } });
      let out = '';
      child.stdout.on('data', (chunk) => (out += chunk));
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`whoami exited ${code}`))));
    });
    assert.equal(JSON.parse(whoami).accountId, accountId);
  } finally {
    await tessera.stop();
  }
});
