import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { createKey } from '../../src/engine/accounts.js';
import type { Db } from '../../src/store/db.js';
import { startProcess, stopProcess } from '../helpers/cluster.js';
import type { Process } from '../helpers/cluster.js';
import { TESSERA_BIN } from '../helpers/cli.js';
import { installComponents, installTemplate } from '../helpers/components.js';
import { forEachEngine } from '../helpers/db.js';
import type { TestTessera } from '../helpers/tessera.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// A task's output streams while it runs: an app printing a line every 200 ms for 5 s is seen
// through GET …/logs and a real `tessera job logs -f` before it ends, each line stored once, with
// the in-process worker of `tessera up` and with a real `tessera worker` agent; an aborted task's
// lines are kept.

const TICKS = 25;
const TICKER = `
import sys, time
print("started")  # not flushed: seen before the first tick because Tessera runs python unbuffered
time.sleep(2)
for i in range(${TICKS}):
    print(f"tick {i}", flush=True)
    if i == 1:
        print("WARNING:root:tick 1 was slow", file=sys.stderr, flush=True)
    time.sleep(0.2)
`;
const ONE_CHUNK = 'import os\nopen(os.path.join(os.environ["CHUNKS_DIR"], "data_0.bin"), "w").write("x")\n';
const FINAL = ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'];

async function installTicker(tessera: TestTessera): Promise<void> {
  await installComponents(tessera, [
    { name: 'ticker', type: 'app', entrypoint: 'main.py', code: TICKER },
    { name: 'one-chunk', type: 'partitioner', entrypoint: 'main.py', code: ONE_CHUNK },
  ]);
  await installTemplate(tessera, { id: 'ticker', description: '', app: 'ticker', partitioner: 'one-chunk', assembler: 'passthrough', config: { maxTaskRetries: 0 } });
}

async function runTicker(tessera: TestTessera, config: Record<string, unknown> = {}): Promise<string> {
  const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'ticker', dataSource: { dataSourceDescriptor: 'bypass' }, config });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const jobId = created.body.job.id as string;
  assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
  return jobId;
}

async function jobState(tessera: TestTessera, jobId: string): Promise<string> {
  return (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job.state;
}

/** Every stored line of the job's app task. */
async function appLines(tessera: TestTessera, jobId: string): Promise<{ log: string; level: string; stream: string }[]> {
  const page = await tessera.call('GET', `/v1/customer/jobs/${jobId}/logs?limit=10000`);
  assert.equal(page.status, 200, JSON.stringify(page.body));
  return page.body.logs.filter((line: { service: string }) => line.service === 'TASKRUNNER');
}

/** Waits until `seen()` holds while the job still runs; fails if the job ends first. */
async function whileRunning(tessera: TestTessera, jobId: string, what: string, seen: () => Promise<boolean>): Promise<void> {
  let ended: { state: string; errorMessage?: string } | undefined;
  await waitFor(`${what} before the job ends`, async () => {
    // The state is read first: lines seen after it was read were seen while it ran.
    const job = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
    const ok = await seen();
    if (FINAL.includes(job.state)) ended = job;
    return ok || ended !== undefined;
  }, 30_000);
  if (ended) assert.fail(`the job ended (${ended.state}: ${ended.errorMessage ?? ''}) before ${what}`);
}

/** A real `tessera job logs -f`; its stdout so far, and its exit. */
function followWithCli(tessera: TestTessera, jobId: string) {
  const child = spawn(process.execPath, [TESSERA_BIN, 'job', 'logs', '-f', jobId], { env: { PATH: process.env.PATH ?? '', TESSERA_URL: tessera.url, TESSERA_API_KEY: tessera.apiKey }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  void exited.then(() => clearTimeout(timer));
  return { output: () => stdout, errors: () => stderr, exited, kill: () => child.kill('SIGKILL') };
}

/** A job's server-sent events as they arrive: names and data, in order. */
function openJobEvents(tessera: TestTessera, jobId: string) {
  const controller = new AbortController();
  const events: { event: string; data: any }[] = [];
  const done = (async () => {
    const response = await fetch(`${tessera.url}/v1/customer/jobs/${jobId}/events`, { headers: { authorization: `Bearer ${tessera.apiKey}`, accept: 'text/event-stream' }, signal: controller.signal });
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += Buffer.from(chunk).toString('utf8');
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(block);
        if (data) events.push(JSON.parse(data[1]!).result);
      }
    }
  })().catch(() => {});
  return { events, done, close: () => controller.abort() };
}

const ticks = (lines: { log: string }[]) => lines.map((line) => line.log).filter((log) => log.startsWith('tick '));

async function streamsWhileRunning(tessera: TestTessera, t: TestContext): Promise<void> {
  await installTicker(tessera);
  const jobId = await runTicker(tessera);
  const cli = followWithCli(tessera, jobId);
  const feed = openJobEvents(tessera, jobId);
  try {
    await t.test('a line printed without flush is seen before the next flush', async () => {
      let first: { log: string }[] = [];
      await whileRunning(tessera, jobId, 'the unflushed first line', async () => (first = await appLines(tessera, jobId)).length > 0);
      assert.deepEqual(first.map((line) => line.log), ['started']);
    });
    await t.test('GET …/logs shows lines before the task ends', () => whileRunning(tessera, jobId, 'three lines through GET …/logs', async () => ticks(await appLines(tessera, jobId)).length >= 3));
    await t.test('`tessera job logs -f` prints lines before the task ends', () => whileRunning(tessera, jobId, 'three lines from the CLI', async () => (cli.output().match(/tick \d+/g) ?? []).length >= 3));
    await t.test('each line is stored once, with the level it names', async () => {
      await waitFor('the job to end', async () => FINAL.includes(await jobState(tessera, jobId)), 60_000);
      assert.equal(await jobState(tessera, jobId), 'JOB_STATE_COMPLETE');
      const lines = await appLines(tessera, jobId);
      assert.deepEqual(ticks(lines), Array.from({ length: TICKS }, (_, index) => `tick ${index}`));
      const warning = lines.find((line) => line.log.startsWith('WARNING:root:'));
      assert.equal(warning?.level, 'WARN');
      assert.equal(warning?.stream, 'stderr');
    });
    await t.test('the job\'s event stream said `logs` while it ran', async () => {
      await feed.done;
      const names = feed.events.map((entry) => entry.event);
      const firstLogs = names.indexOf('logs');
      assert.ok(firstLogs >= 0, `events: ${names.join(', ')}`);
      assert.ok(firstLogs < names.lastIndexOf('state'), 'before the job\'s last state');
      assert.ok(feed.events[firstLogs]!.data.lastLogId > 0);
    });
    await t.test('the CLI ends with the job, having printed every line once', async () => {
      assert.equal(await cli.exited, 0, cli.errors());
      assert.deepEqual(cli.output().match(/tick \d+$/gm), Array.from({ length: TICKS }, (_, index) => `tick ${index}`));
    });
  } finally {
    cli.kill();
    feed.close();
  }
}

async function abortedLinesKept(tessera: TestTessera): Promise<void> {
  const jobId = await runTicker(tessera);
  await whileRunning(tessera, jobId, 'three lines of the task to abort', async () => ticks(await appLines(tessera, jobId)).length >= 3);
  assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/abort`)).status, 200);
  // Cancelled once the worker has stopped the process and said so (after its last lines).
  await waitFor('the aborted task to be cancelled', async () => {
    const tasks = (await tessera.call('GET', `/v1/customer/jobs/${jobId}/tasks`)).body.data as { service: string; state: string }[];
    return tasks.some((task) => task.service === 'TASKRUNNER' && task.state === 'cancelled');
  }, 30_000);
  const kept = ticks(await appLines(tessera, jobId));
  assert.ok(kept.length >= 3 && kept.length < TICKS, `kept ${kept.length} lines`);
  assert.deepEqual(kept, Array.from({ length: kept.length }, (_, index) => `tick ${index}`), 'in order, each once');
}

/** Killed by its timeout: what streamed and what its failure report carried, each line once. */
async function timedOutLinesKept(tessera: TestTessera): Promise<void> {
  const jobId = await runTicker(tessera, { taskTimeout: 3, maxTaskRetries: 0 });
  await waitFor('the timed-out job to fail', async () => FINAL.includes(await jobState(tessera, jobId)), 60_000);
  const job = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
  assert.equal(job.state, 'JOB_STATE_FAILED');
  assert.match(job.errorMessage ?? '', /time/i);
  const kept = ticks(await appLines(tessera, jobId));
  assert.ok(kept.length >= 1 && kept.length < TICKS, `kept ${kept.length} lines`);
  assert.deepEqual(kept, Array.from({ length: kept.length }, (_, index) => `tick ${index}`), 'in order, each once');
}

async function withInProcessWorker(db: Db, body: (tessera: TestTessera) => Promise<void>): Promise<void> {
  const tessera = await startTestTessera(db);
  try {
    await body(tessera);
  } finally {
    await tessera.stop();
  }
}

/** A test Tessera with no slots of its own, and one real `tessera worker` agent. */
async function withWorkerAgent(db: Db, body: (tessera: TestTessera) => Promise<void>): Promise<void> {
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-live-logs-'));
  let agent: Process | undefined;
  try {
    const token = (await createKey(db, { scope: 'worker' })).apiKey;
    agent = await startProcess(['worker', '--server', tessera.url, '--token', token, '--slots', '1', '--json'], { TESSERA_HOME: home, TESSERA_LOG_LEVEL: 'warn', TESSERA_SANDBOX: 'off', TESSERA_HOST_IMAGES: 'python:*' });
    await body(tessera);
  } finally {
    await stopProcess(agent);
    await tessera.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

forEachEngine('in-process worker: lines stream while the task runs', (db, _engine, t) => withInProcessWorker(db, async (tessera) => {
  await t.test('a running task', (step) => streamsWhileRunning(tessera, step));
  await t.test('an aborted task\'s lines are kept', () => abortedLinesKept(tessera));
  await t.test('a timed-out task\'s lines are kept', () => timedOutLinesKept(tessera));
}));

forEachEngine('worker agent: lines stream while the task runs', (db, _engine, t) => withWorkerAgent(db, async (tessera) => {
  await t.test('a running task', (step) => streamsWhileRunning(tessera, step));
  await t.test('an aborted task\'s lines are kept', () => abortedLinesKept(tessera));
  await t.test('a timed-out task\'s lines are kept', () => timedOutLinesKept(tessera));
}));
