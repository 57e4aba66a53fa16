import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { packageRoot } from '../../src/config/config.js';
import { waitFor } from '../helpers/tessera.js';

// `tessera up` as a real child process on embedded PGlite: first-start key, restart, the home
// lock, `tessera key create`, and a server killed with SIGKILL in the middle of a job.

const BIN = path.join(packageRoot(), 'bin', 'tessera.js');
const KEY = 'tsk_test_key_chosen_by_a_script_0123456789';

function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...extra };
}

interface Up {
  child: ChildProcess;
  info: { url: string; apiKey?: string; accountId?: string };
  stderr: () => string;
}

async function up(home: string, env: Record<string, string> = {}): Promise<Up> {
  const child = spawn(process.execPath, [BIN, 'up', '--port', '0', '--home', home, '--json', '--slots', '2'], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const info = await new Promise<Up['info']>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', (code) => reject(new Error(`tessera up exited with ${code}: ${stderr}`)));
  });
  return { child, info, stderr: () => stderr };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function get(url: string, key: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { headers: { authorization: key } });
  return { status: response.status, body: await response.json() };
}

test('tessera up: TESSERA_API_KEY becomes the first key; restart keeps it; the home is locked; key create adds keys', async () => {
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-up-'));
  try {
    const first = await up(home, { TESSERA_API_KEY: KEY });
    assert.equal(first.info.apiKey, undefined, 'a key the operator chose is not echoed');
    assert.equal((await get(`${first.info.url}/v1/customer/jobs`, KEY)).status, 200);
    assert.equal((await get(`${first.info.url}/v1/customer/jobs`, 'tsk_other')).status, 401);

    const second = await run(['up', '--port', '0', '--home', home]);
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /another Tessera process \(pid \d+\) is using/);
    assert.doesNotMatch(first.stderr(), new RegExp(KEY), 'the key never appears in the logs');
    await stop(first.child);

    const made = await run(['key', 'create', '--home', home, '--json']);
    assert.equal(made.code, 0, made.stderr);
    const { apiKey } = JSON.parse(made.stdout);
    assert.match(apiKey, /^tsk_/);

    const again = await up(home, { TESSERA_API_KEY: 'tsk_ignored_after_the_first_start_000000' });
    try {
      assert.equal(again.info.apiKey, undefined, 'no new first key on a database that has accounts');
      assert.equal((await get(`${again.info.url}/v1/customer/jobs`, `Bearer ${KEY}`)).status, 200);
      assert.equal((await get(`${again.info.url}/v1/customer/jobs`, apiKey)).status, 200);
      assert.equal((await get(`${again.info.url}/v1/customer/jobs`, 'tsk_ignored_after_the_first_start_000000')).status, 401);
    } finally {
      await stop(again.child);
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('tessera up prints a generated key once', async () => {
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-up-'));
  try {
    const first = await up(home);
    assert.match(first.info.apiKey ?? '', /^tsk_[A-Za-z0-9_-]{43}$/);
    assert.equal((await get(`${first.info.url}/v1/customer/jobs`, first.info.apiKey!)).status, 200);
    await stop(first.child);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('a server killed with SIGKILL mid-job resumes the job after a restart, its leases handed back at once', async () => {
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-up-'));
  const examples = mkdtempSync(path.join(tmpdir(), 'tessera-examples-'));
  try {
    // The built-in examples plus one whose app takes a while, so the kill lands mid-task.
    cpSync(path.join(packageRoot(), 'examples'), examples, { recursive: true });
    const slow = path.join(examples, 'slow', 'app');
    mkdirSync(path.join(slow, 'app'), { recursive: true });
    writeFileSync(path.join(slow, 'manifest.json'), JSON.stringify({ name: 'slow', version: '1.0', entrypoint: 'main.py' }));
    writeFileSync(path.join(slow, 'app', 'main.py'), 'import os, time\ntime.sleep(2)\nopen(os.path.join(os.environ["TASK_RESULTS_DIR"], "done.txt"), "w").write(os.environ["CHUNK_NUMBER"])\n');
    writeFileSync(path.join(examples, 'slow', 'template.json'), JSON.stringify({ id: 'slow', app: 'slow', partitioner: 'passthrough', assembler: 'passthrough' }));
    // Leases of a minute: the restart must not wait them out (only one process owns an embedded home).
    const env = { TESSERA_API_KEY: KEY, TESSERA_EXAMPLES_DIR: examples, TESSERA_LEASE_SECONDS: '60' };

    const first = await up(home, env);
    const api = `${first.info.url}/v1/customer`;
    const created = await fetch(`${api}/jobs`, { method: 'POST', headers: { authorization: KEY, 'content-type': 'application/json' }, body: JSON.stringify({ templateId: 'slow' }) });
    const jobId = ((await created.json()) as any).job.id;
    await fetch(`${api}/jobs/${jobId}/run`, { method: 'POST', headers: { authorization: KEY } });
    await waitFor('the app task to start', async () => (await get(`${api}/jobs/${jobId}`, KEY)).body.job.state === 'JOB_STATE_PARTITIONED');
    await stop(first.child, 'SIGKILL');

    const second = await up(home, env);
    try {
      const job = await waitFor('the job to finish after the restart', async () => {
        const got = (await get(`${second.info.url}/v1/customer/jobs/${jobId}`, KEY)).body.job;
        return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(got.state) ? got : undefined;
      }, 30_000);
      assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
      assert.match(second.stderr(), /handed back the leases of the previous process/);
      // Its lease was lost with the killed process: counted apart, its two leases one attempt each.
      const tasks = (await get(`${second.info.url}/v1/customer/jobs/${jobId}/tasks`, KEY)).body.data as { kind: string; attempt: number; lostLeases: number }[];
      const app = tasks.find((task) => task.kind === 'app');
      assert.deepEqual([app?.attempt, app?.lostLeases], [2, 1]);
      const results = (await get(`${second.info.url}/v1/customer/jobs/${jobId}/results`, KEY)).body.results;
      assert.deepEqual(results.map((result: { name: string }) => result.name), ['done.txt']);
    } finally {
      await stop(second.child);
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
    rmSync(examples, { recursive: true, force: true });
  }
});
