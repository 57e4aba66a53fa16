import assert from 'node:assert/strict';
import { forEachEngine } from '../helpers/db.js';
import { installComponents, installTemplate } from '../helpers/components.js';
import { checkResponse } from '../helpers/responses.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';
import type { TestTessera } from '../helpers/tessera.js';

// What goes wrong, over real HTTP: failing apps, refused updates, bad input, other tenants.

const FAILING_APP = `import os, sys
sys.stdout.write("about to fail\\n")
sys.stderr.write("Traceback (most recent call last):\\nValueError: chunk %s is unreadable\\n" % os.environ["CHUNK_NUMBER"])
sys.exit(3)
`;

// A node app behind passthrough engines: upper-cases its chunk into a file named like every task's.
const UPPER_APP = `const fs = require('node:fs');
const path = require('node:path');
const text = fs.readFileSync(path.join(process.env.TASK_DIR, 'data.bin'), 'utf8');
fs.writeFileSync(path.join(process.env.TASK_RESULTS_DIR, 'out.txt'), text.toUpperCase() + JSON.parse(process.env.APP_PARAMS).suffix);
`;

async function finished(tessera: TestTessera, jobId: string) {
  return waitFor(`job ${jobId} to end`, async () => {
    const got = await tessera.call('GET', `/v1/customer/jobs/${jobId}`);
    return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(got.body.job?.state) ? got.body.job : undefined;
  });
}

forEachEngine('a failing app fails the job with its stderr, after its retries', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    await installComponents(tessera, [{ name: 'always-fails', type: 'app', entrypoint: 'main.py', code: FAILING_APP }]);
    await installTemplate(tessera, { id: 'fails', description: '', app: 'always-fails', partitioner: 'passthrough', assembler: 'passthrough', config: { maxTaskRetries: 1 } });
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'fails' });
    const jobId = created.body.job.id;
    assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`, { config: { taskTimeout: '60' } })).status, 200);
    const job = await finished(tessera, jobId);
    assert.equal(job.state, 'JOB_STATE_FAILED');
    assert.match(job.errorMessage, /chunk 0 failed after 2 attempts/);
    assert.match(job.errorMessage, /exited with code 3/);
    assert.match(job.errorMessage, /ValueError: chunk 0 is unreadable/);
    assert.equal(job.config.taskTimeout, 60, 'run accepted the int64 as a string');
    const results = await tessera.call('GET', `/v1/customer/jobs/${jobId}/results`);
    assert.equal(results.status, 400);
    assert.equal(results.body.code, 9);
    assert.match(results.body.message, /JOB_STATE_FAILED/);
  } finally {
    await tessera.stop();
  }
});

forEachEngine('passthrough engines and a node app: every task writes the same name, all reach the output', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    await installComponents(tessera, [{ name: 'upper', type: 'app', entrypoint: 'main.js', code: UPPER_APP }]);
    await installTemplate(tessera, { id: 'upper', description: '', app: 'upper', partitioner: 'passthrough', assembler: 'passthrough', params: { app: { suffix: '!' } } });
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'upper' });
    const jobId = created.body.job.id;
    assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200, 'run with no body at all');
    const job = await finished(tessera, jobId);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    assert.equal(job.numChunks, 1);
    const results = await tessera.call('GET', `/v1/customer/jobs/${jobId}/results`);
    assert.deepEqual(results.body.results.map((result: { name: string }) => result.name), ['out.txt']);
    assert.equal(await (await fetch(results.body.results[0].link)).text(), '!', 'the bypass source gives an empty input file');
  } finally {
    await tessera.stop();
  }
});

forEachEngine('PATCH works while NEW and is refused after run; bad input is a 400 naming the field', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count' });
    const jobId = created.body.job.id;
    const base = `/v1/customer/jobs/${jobId}`;

    const renamed = await tessera.call('PATCH', `${base}/jobname`, 'my job');
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    checkResponse('patch', '/v1/customer/jobs/{jobId}/jobname', renamed);
    assert.equal(renamed.body.job.name, 'my job');
    const configs = await tessera.call('PATCH', `${base}/configs`, { taskTimeout: '120', isTestJob: true });
    assert.equal(configs.status, 200, JSON.stringify(configs.body));
    checkResponse('patch', '/v1/customer/jobs/{jobId}/configs', configs);
    assert.equal(configs.body.job.config.taskTimeout, 120);
    assert.equal(configs.body.job.config.jobTimeout, 3600, 'other template defaults stay');
    const params = await tessera.call('PATCH', `${base}/params`, { partitioner: { chunks: 2 } });
    checkResponse('patch', '/v1/customer/jobs/{jobId}/params', params);
    assert.deepEqual(params.body.job.params.partitioner, { chunks: 2 });
    const source = await tessera.call('PATCH', `${base}/datasource`, { dataSource: { dataSourceDescriptor: 'bypass' }, dataDestination: { dataSourceDescriptor: 'bucket' } });
    assert.equal(source.status, 200, JSON.stringify(source.body));
    checkResponse('patch', '/v1/customer/jobs/{jobId}/datasource', source);

    // Bad input: 400 rpcStatus naming the field, never a 500.
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/v1/customer/jobs', {}, /templateId/],
      ['POST', '/v1/customer/jobs', { templateId: 'word-count', config: { taskTimeout: 'soon' } }, /taskTimeout/],
      ['POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'ftp' } }, /ftp/],
      ['POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url: 'file:///etc/passwd' } } }, /url/],
      ['POST', '/v1/customer/jobs', { templateId: 'word-count', priority: 'URGENT' }, /priority/],
      ['POST', '/v1/customer/jobs', 'RAW:{"templateId": "word-count",', /JSON/],
      ['POST', '/v1/customer/jobs', 'RAW:[1,2]', /body/],
      ['PATCH', `${base}/configs`, { taskTimeout: -5 }, /taskTimeout/],
      ['PATCH', `${base}/jobname`, { name: 'not a string' }, /body|string/],
      ['GET', '/v1/customer/jobs?pagination.limit=abc', undefined, /pagination\.limit/],
      ['POST', '/v1/customer/jobs/filter', { filters: [{ field: 'state', condition: 'FILTER_CONDITION_SOMETIMES' }] }, /condition/],
      ['POST', '/v1/customer/jobs/filter', { filters: [{ field: 'password', condition: 'FILTER_CONDITION_EQ', value: { '@type': 'type.googleapis.com/google.protobuf.Value', value: 'x' } }] }, /password/],
      ['POST', `${base}/run`, { config: { jobTimeout: 'never' } }, /jobTimeout/],
      ['POST', '/v1/customer/jobs', { templateId: 'word-count', name: 'nul\u0000here' }, /NUL character[\s\S]*"name"/],
    ];
    for (const [method, route, body, mentions] of cases) {
      const answer = await tessera.call(method, route, body);
      assert.equal(answer.status, 400, `${method} ${route} ${JSON.stringify(body)} → ${answer.status} ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, 3, JSON.stringify(answer.body));
      assert.match(answer.body.message, mentions);
    }

    const missing = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'no-such-template' });
    assert.equal(missing.status, 404);
    assert.match(missing.body.message, /template "no-such-template" was not found/);

    const run = await tessera.call('POST', `${base}/run`, { taskTimeout: 100 });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    const again = await tessera.call('POST', `${base}/run`, {});
    assert.equal(again.status, 400);
    assert.equal(again.body.code, 9);
    const refused = await tessera.call('PATCH', `${base}/jobname`, 'too late');
    assert.equal(refused.status, 400);
    assert.equal(refused.body.code, 9, 'FAILED_PRECONDITION');
    assert.match(refused.body.message, /JOB_STATE_(STARTED|UPLOADING|PARTITIONING|PARTITIONED|TASKS_COMPLETED|MERGING|MERGED|DOWNLOADING|COMPLETE)/);
    checkResponse('patch', '/v1/customer/jobs/{jobId}/jobname', refused);
    await finished(tessera, jobId);
  } finally {
    await tessera.stop();
  }
});

forEachEngine('unknown jobs are 404, other accounts see nothing, keys are checked', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count' });
    const jobId = created.body.job.id;
    for (const [method, route, body] of [
      ['GET', `/v1/customer/jobs/${jobId}`],
      ['PATCH', `/v1/customer/jobs/${jobId}/jobname`, 'stolen'],
      ['POST', `/v1/customer/jobs/${jobId}/run`],
      ['POST', `/v1/customer/jobs/${jobId}/abort`],
      ['DELETE', `/v1/customer/jobs/${jobId}`],
      ['POST', '/v1/customer/jobs', { templateId: 'word-count', jobId }],
    ] as [string, string, unknown?][]) {
      const answer = await tessera.call(method, route, body, tessera.otherApiKey);
      assert.equal(answer.status, 404, `${method} ${route} as another account → ${answer.status}`);
      assert.equal(answer.body.code, 5);
      checkResponse(method.toLowerCase(), '/v1/customer/jobs/{jobId}', answer);
    }
    assert.equal((await tessera.call('GET', '/v1/customer/jobs', undefined, tessera.otherApiKey)).body.pagination.total, 0);
    assert.equal((await tessera.call('GET', '/v1/customer/jobs/01HZZZZZZZZZZZZZZZZZZZZZZZ')).status, 404);
    assert.equal((await tessera.call('GET', '/v1/customer/jobs/%00')).status, 404, 'an id no job can have is simply not found');

    for (const key of [null, 'tsk_wrong', 'Basic abc def']) {
      const answer = await tessera.call('GET', '/v1/customer/jobs', undefined, key);
      assert.equal(answer.status, 401);
      assert.equal(answer.body.code, 16);
    }
    // Both header spellings work.
    const plain = await fetch(`${tessera.url}/v1/customer/jobs`, { headers: { authorization: tessera.apiKey } });
    assert.equal(plain.status, 200);

    // Updating through POST /jobs with jobId, then aborting before it runs, deletes it.
    const updated = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', jobId, name: 'renamed' });
    assert.equal(updated.body.job.name, 'renamed');
    assert.equal(updated.body.job.id, jobId);
    const aborted = await tessera.call('POST', `/v1/customer/jobs/${jobId}/abort`);
    assert.equal(aborted.status, 200);
    checkResponse('post', '/v1/customer/jobs/{jobId}/abort', aborted);
    assert.equal((await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).status, 404);

    const openapi = await fetch(`${tessera.url}/openapi.json`);
    assert.ok(((await openapi.json()) as any).paths['/v1/customer/jobs/{jobId}/results']);
  } finally {
    await tessera.stop();
  }
});

// Beats into its account's cache every 50 ms: inside its sandbox its pid is not the host's, so the
// test sees it alive by its beat.
const SLOW_APP = `import os, time
beat = os.path.join(os.environ["USER_CACHE_DIR"], "beat-%s" % os.environ["CHUNK_NUMBER"])
for count in range(2400):
    with open(beat + ".new", "w") as f:
        f.write(str(count))
    os.replace(beat + ".new", beat)
    time.sleep(0.05)
`;


forEachEngine('abort stops a running job: FAILED "aborted", its process killed', async (db) => {
  const tessera = await startTestTessera(db, { leaseSeconds: 30 });
  try {
    await installComponents(tessera, [{ name: 'slow', type: 'app', entrypoint: 'main.py', code: SLOW_APP }]);
    await installTemplate(tessera, { id: 'slow', description: '', app: 'slow', partitioner: 'passthrough', assembler: 'passthrough' });
    // A 30 s lease heartbeats every 10 s: a kill within 5 s shows the abort reached the worker directly.
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'slow' });
    const jobId = created.body.job.id;
    const accountId = (await db.query<{ account_id: string }>('SELECT account_id FROM jobs WHERE id = $1', [jobId]))[0]!.account_id;
    await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`);
    const { readFileSync, existsSync } = await import('node:fs');
    const beatFile = `${tessera.config.home}/cache/accounts/${accountId}/beat-0`;
    const beat = () => (existsSync(beatFile) ? readFileSync(beatFile, 'utf8') : '');
    await waitFor('the app to start', async () => Number(beat()) >= 2);
    const aborted = await tessera.call('POST', `/v1/customer/jobs/${jobId}/abort`);
    assert.equal(aborted.status, 200, JSON.stringify(aborted.body));
    const job = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
    assert.equal(job.state, 'JOB_STATE_FAILED');
    assert.match(job.errorMessage, /aborted/);
    // Killed: its beat stops (a beat of 50 ms, looked at for 400 ms).
    await waitFor('the app process to be killed', async () => {
      const before = beat();
      await new Promise((resolve) => setTimeout(resolve, 400));
      return beat() === before;
    }, 5_000);
    // The worker confirmed the stop, so the async view says Cancelled, not Cancelling.
    await waitFor('Cancelled', async () => (await tessera.call('GET', `/v2/accounts/${accountId}/jobs/ProcessFileJob/${jobId}`)).body.status === 'Cancelled', 5_000);
    const again = await tessera.call('POST', `/v1/customer/jobs/${jobId}/abort`);
    assert.equal(again.status, 400);
    assert.equal(again.body.code, 9);
  } finally {
    await tessera.stop();
  }
});

// Hangs on its first attempt only (a marker in the per-account cache remembers), then succeeds.
const HANGS_ONCE_APP = `import os, time
marker = os.path.join(os.environ["USER_CACHE_DIR"], "tried-%s" % os.environ["CHUNK_NUMBER"])
if not os.path.exists(marker):
    open(marker, "w").close()
    time.sleep(60)
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "ok.txt"), "w").write("second time lucky")
`;

forEachEngine('taskTimeout kills a task and retries it; retries run out; jobTimeout fails a job', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    await installComponents(tessera, [{ name: 'slow', type: 'app', entrypoint: 'main.py', code: SLOW_APP }, { name: 'hangs-once', type: 'app', entrypoint: 'main.py', code: HANGS_ONCE_APP }]);
    await installTemplate(tessera, { id: 'slow', description: '', app: 'slow', partitioner: 'passthrough', assembler: 'passthrough' });
    await installTemplate(tessera, { id: 'hangs-once', description: '', app: 'hangs-once', partitioner: 'passthrough', assembler: 'passthrough' });
    const retried = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'hangs-once', config: { taskTimeout: 1, maxTaskRetries: 1 } })).body.job.id;
    await tessera.call('POST', `/v1/customer/jobs/${retried}/run`);
    const lucky = await finished(tessera, retried);
    assert.equal(lucky.state, 'JOB_STATE_COMPLETE', lucky.errorMessage);
    const [attempts] = await db.query<{ attempt: number }>(`SELECT attempt FROM tasks WHERE job_id = $1 AND kind = 'app'`, [retried]);
    assert.equal(attempts!.attempt, 2, 'timed out once, then succeeded on the retry');

    const timed = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'slow', config: { taskTimeout: 1, maxTaskRetries: 1 } })).body.job.id;
    await tessera.call('POST', `/v1/customer/jobs/${timed}/run`);
    const overJobTime = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'slow', config: { jobTimeout: 2 } })).body.job.id;
    await tessera.call('POST', `/v1/customer/jobs/${overJobTime}/run`);
    const first = await finished(tessera, timed);
    assert.equal(first.state, 'JOB_STATE_FAILED');
    assert.match(first.errorMessage, /chunk 0 failed after 2 attempts: app slow@1\.0 timed out after 1 s and was killed/);
    const second = await finished(tessera, overJobTime);
    assert.equal(second.state, 'JOB_STATE_FAILED');
    assert.match(second.errorMessage, /longer than its jobTimeout of 2 s/);
  } finally {
    await tessera.stop();
  }
});
