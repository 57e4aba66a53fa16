import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/config/config.js';
import { waitFor } from '../helpers/tessera.js';

// Tessera's own image (Containerfile), built by scripts/test-node-image.sh (.ci/run runs it): run
// with `tessera up` inside, an embedded home on a host folder, its API key from a secret file, the
// pod settings the Kubernetes manifests give a worker (no capabilities, no privilege escalation, a
// read-only root; the sandbox's seccomp profile and /proc unmasked), and a job run through it.

const IMAGE = process.env.TESSERA_TEST_TESSERA_IMAGE;
const REQUIRED = process.env.REQUIRE_SERVICES === '1';
const skip = IMAGE || REQUIRED ? false : 'TESSERA_TEST_TESSERA_IMAGE is not set (run: eval "$(bash scripts/test-node-image.sh)")';
if (skip) console.error(`\n*** image tests SKIPPED: ${skip}. ***\n`);

const API_KEY = 'tsk_image_test_key_0123456789abcdef';
const TEXT = 'the quick brown fox jumps over the lazy dog the fox\n';

/** What the manifests give a worker pod, as podman says it (docs/DEPLOYING.md, "What a worker in a container needs"). */
// A task's open files (TESSERA_TASK_OPEN_FILES, 4096) must fit under the container's hard limit;
// podman's own default exceeds this machine's hard limit (20000), so it is named.
const LIMITS = ['--ulimit', 'nofile=8192:8192', '--ulimit', 'nproc=4096:4096'];
const SANDBOXED = [
  ...LIMITS,
  '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--read-only',
  '--security-opt', `seccomp=${path.join(packageRoot(), 'deploy', 'seccomp', 'tessera-worker.json')}`, '--security-opt', 'unmask=/proc/*',
];

/** A host folder owned by the image's user (uid 10001), as a volume's owner would be set in a cluster. */
function homeFolder(prefix: string): string {
  const home = mkdtempSync(path.join(tmpdir(), prefix));
  chownSync(home, 10001, 10001);
  return home;
}

/** A folder holding one secret file each, readable in the container, mounted read-only. */
function secretFolder(secrets: Record<string, string>): string {
  const folder = mkdtempSync(path.join(tmpdir(), 'tessera-image-secrets-'));
  for (const [name, value] of Object.entries(secrets)) {
    writeFileSync(path.join(folder, name), `${value}\n`);
    chmodSync(path.join(folder, name), 0o444);
  }
  chmodSync(folder, 0o755);
  return folder;
}

type Caller = (method: string, route: string, body?: unknown) => Promise<{ status: number; body: any }>;

function caller(url: string, key: string): Caller {
  return async (method, route, body) => {
    const response = await fetch(`${url}${route}`, { method, headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: response.status, body: (await response.json()) as any };
  };
}

/** word-count on an uploaded file, through the public API only; answers the result's text. */
async function runWordCount(call: Caller): Promise<string> {
  const created = await call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'file' }, params: { partitioner: { chunks: 2 } } });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const jobId = created.body.job.id as string;
  const upload = await fetch(created.body.job.dataSource.params.tempUrl, { method: 'PUT', body: TEXT, headers: { 'content-disposition': 'attachment; filename="fox.txt"' } });
  assert.ok(upload.ok, `upload answered ${upload.status}: ${await upload.text()}`);
  assert.equal((await call('PATCH', `/v1/customer/jobs/${jobId}/uploadcompleted`)).status, 200);
  assert.equal((await call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
  const job = await waitFor('the job to end', async () => {
    const got = await call('GET', `/v1/customer/jobs/${jobId}`);
    return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(got.body.job.state) ? got.body.job : undefined;
  }, 120_000);
  assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
  const results = await call('GET', `/v1/customer/jobs/${jobId}/results`);
  return (await fetch(results.body.results[0].link)).text();
}

/** The one line a `--json` start printed on stdout (logs are JSON lines too, on stderr). */
function startLine(name: string, key: string): any {
  const line = podman(['logs', name]).split('\n').find((entry) => entry.includes(`"${key}"`) && entry.includes('"runtime"'));
  return JSON.parse(line ?? '{}');
}

function podman(args: string[], timeoutMs = 60_000): string {
  // runc and cgroupfs: crun fails on this machine's hybrid cgroups (shared/recipes/task-isolation.md).
  const result = spawnSync('podman', ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs', ...args], { encoding: 'utf8', timeout: timeoutMs });
  if (result.status !== 0) throw new Error(`podman ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr || result.error?.message}`);
  return result.stdout.trim();
}

test('the image runs `tessera up` as a non-root user and a job completes through its API', { skip, timeout: 300_000 }, async (t) => {
  assert.ok(IMAGE, 'TESSERA_TEST_TESSERA_IMAGE is not set, and REQUIRE_SERVICES=1 requires the image test (run scripts/test-node-image.sh)');
  const home = homeFolder('tessera-image-home-');
  const secrets = secretFolder({ api_key: API_KEY });
  const name = `tessera-image-test-${process.pid}`;
  try {
    podman(['run', '--detach', '--name', name, ...SANDBOXED,
      '-v', `${home}:/var/lib/tessera`, '-v', `${secrets}:/run/secrets/tessera:ro`, '-e', 'TESSERA_API_KEY_FILE=/run/secrets/tessera/api_key',
      '-p', '127.0.0.1::8080', IMAGE!, 'up', '--slots', '2', '--json']);
    const url = `http://127.0.0.1:${podman(['port', name, '8080']).split(':').at(-1)}`;
    const call = caller(url, API_KEY);

    await t.test('it becomes ready, its tasks confined by the sandbox', async () => {
      await waitFor('/readyz in the container', async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.ok, 90_000);
      // `up --json` says where tasks run; its start ran a probe task there.
      const started = startLine(name, 'url');
      assert.match(started.runtime?.sandbox ?? '', /^namespaces/, JSON.stringify(started));
      assert.equal((await call('GET', '/v1/auth/user')).status, 200, 'the key from TESSERA_API_KEY_FILE opens the API');
    });

    await t.test('its process runs as the image\'s non-root user, with no capabilities', () => {
      const status = podman(['exec', name, 'cat', '/proc/1/status']);
      assert.match(status, /^Uid:\s+10001\s+10001\s+10001\s+10001$/m);
      assert.match(status, /^CapEff:\s+0+$/m);
      assert.equal(podman(['exec', name, 'id', '-un']), 'tessera');
    });

    await t.test('word-count runs end to end on an uploaded file', async () => {
      const output = await runWordCount(call);
      assert.match(output, /"?the"?\D+3/);
      assert.match(output, /"?fox"?\D+2/);
    });
  } finally {
    spawnSync('podman', ['rm', '--force', '--time', '5', name], { encoding: 'utf8', timeout: 60_000 });
    rmSync(home, { recursive: true, force: true });
    rmSync(secrets, { recursive: true, force: true });
  }
});

test('the cluster shape in containers: a server, and a worker agent confined as the manifests ask, holding only its token file', { skip, timeout: 300_000 }, async (t) => {
  assert.ok(IMAGE, 'TESSERA_TEST_TESSERA_IMAGE is not set, and REQUIRE_SERVICES=1 requires the image test (run scripts/test-node-image.sh)');
  const operatorKey = 'tsk_image_test_operator_0123456789abcdef';
  const serverHome = homeFolder('tessera-image-server-');
  const workerHome = homeFolder('tessera-image-worker-');
  const serverSecrets = secretFolder({ api_key: API_KEY, operator_key: operatorKey });
  let workerSecrets: string | undefined;
  const server = `tessera-image-server-${process.pid}`;
  const worker = `tessera-image-worker-${process.pid}`;
  try {
    // The server: no worker slots, the restricted profile (no seccomp or /proc change: it runs no tasks).
    podman(['run', '--detach', '--name', server, ...LIMITS, '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--read-only',
      '-v', `${serverHome}:/var/lib/tessera`, '-v', `${serverSecrets}:/run/secrets/tessera:ro`,
      '-e', 'TESSERA_API_KEY_FILE=/run/secrets/tessera/api_key', '-e', 'TESSERA_OPERATOR_KEY_FILE=/run/secrets/tessera/operator_key',
      '-p', '127.0.0.1::8080', IMAGE!, 'server', '--json']);
    const url = `http://127.0.0.1:${podman(['port', server, '8080']).split(':').at(-1)}`;
    await waitFor('/readyz of the server container', async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.ok, 90_000);

    await t.test('a worker token made through the operator API, handed over as a file', async () => {
      const made = await caller(url, operatorKey)('POST', '/v1/operator/keys', { scope: 'worker' });
      assert.equal(made.status, 200, JSON.stringify(made.body));
      workerSecrets = secretFolder({ worker_token: made.body.apiKey });
      // The worker shares the server's network namespace, as a sidecar would: the server is 127.0.0.1:8080.
      podman(['run', '--detach', '--name', worker, ...SANDBOXED, '--network', `container:${server}`,
        '-v', `${workerHome}:/var/lib/tessera`, '-v', `${workerSecrets}:/run/secrets/tessera-worker:ro`,
        '-e', 'TESSERA_WORKER_TOKEN_FILE=/run/secrets/tessera-worker/worker_token',
        // As the manifests set them: no container runtime, word-count's python:3.11-slim in the sandbox.
        '-e', 'TESSERA_CONTAINER_RUNTIME=off', '-e', 'TESSERA_HOST_IMAGES=python:*,node:*',
        IMAGE!, 'worker', '--server', 'http://127.0.0.1:8080', '--slots', '2', '--json']);
      const started = await waitFor('the worker agent to start', async () => startLine(worker, 'workerId').workerId ? startLine(worker, 'workerId') : undefined, 90_000);
      assert.match(started.runtime.sandbox, /^namespaces/, JSON.stringify(started));
      assert.match(podman(['exec', worker, 'cat', '/proc/1/status']), /^Uid:\s+10001\s+10001\s+10001\s+10001$/m);
    });

    await t.test('a job runs on the agent (the server has no slots) and completes', async () => {
      const output = await runWordCount(caller(url, API_KEY));
      assert.match(output, /"?fox"?\D+2/);
    });
  } finally {
    for (const name of [worker, server]) spawnSync('podman', ['rm', '--force', '--time', '5', name], { encoding: 'utf8', timeout: 60_000 });
    for (const folder of [serverHome, workerHome, serverSecrets, workerSecrets]) if (folder) rmSync(folder, { recursive: true, force: true });
  }
});
