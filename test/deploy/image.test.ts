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

function podman(args: string[], timeoutMs = 60_000): string {
  // runc and cgroupfs: crun fails on this machine's hybrid cgroups (shared/recipes/task-isolation.md).
  const result = spawnSync('podman', ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs', ...args], { encoding: 'utf8', timeout: timeoutMs });
  if (result.status !== 0) throw new Error(`podman ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr || result.error?.message}`);
  return result.stdout.trim();
}

test('the image runs `tessera up` as a non-root user and a job completes through its API', { skip, timeout: 300_000 }, async (t) => {
  assert.ok(IMAGE, 'TESSERA_TEST_TESSERA_IMAGE is not set, and REQUIRE_SERVICES=1 requires the image test (run scripts/test-node-image.sh)');
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-image-home-'));
  const secrets = mkdtempSync(path.join(tmpdir(), 'tessera-image-secrets-'));
  writeFileSync(path.join(secrets, 'api_key'), `${API_KEY}\n`);
  chmodSync(path.join(secrets, 'api_key'), 0o444);
  chmodSync(secrets, 0o755);
  // The image's user (uid 10001) owns its home, as a volume's owner would be set in a cluster.
  chownSync(home, 10001, 10001);
  const name = `tessera-image-test-${process.pid}`;
  try {
    // A task's open files (TESSERA_TASK_OPEN_FILES, 4096) must fit under the container's hard limit;
    // podman's own default exceeds this machine's hard limit (20000), so it is named.
    podman(['run', '--detach', '--name', name, '--ulimit', 'nofile=8192:8192', '--ulimit', 'nproc=4096:4096',
      '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--read-only',
      '--security-opt', `seccomp=${path.join(packageRoot(), 'deploy', 'seccomp', 'tessera-worker.json')}`, '--security-opt', 'unmask=/proc/*',
      '-v', `${home}:/var/lib/tessera`, '-v', `${secrets}:/run/secrets/tessera:ro`, '-e', 'TESSERA_API_KEY_FILE=/run/secrets/tessera/api_key',
      '-p', '127.0.0.1::8080', IMAGE!, 'up', '--slots', '2', '--json']);
    const port = podman(['port', name, '8080']).split(':').at(-1);
    const url = `http://127.0.0.1:${port}`;
    const call = async (method: string, route: string, body?: unknown) => {
      const response = await fetch(`${url}${route}`, { method, headers: { authorization: `Bearer ${API_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: response.status, body: (await response.json()) as any };
    };

    await t.test('it becomes ready, its tasks confined by the sandbox', async () => {
      await waitFor('/readyz in the container', async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.ok, 90_000);
      // `up --json` prints one line on stdout saying where tasks run; its start ran a probe task there.
      const started = JSON.parse(podman(['logs', name]).split('\n').find((line) => line.includes('"runtime"')) ?? '{}');
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
      const output = await (await fetch(results.body.results[0].link)).text();
      assert.match(output, /"?the"?\D+3/);
      assert.match(output, /"?fox"?\D+2/);
    });
  } finally {
    spawnSync('podman', ['rm', '--force', '--time', '5', name], { encoding: 'utf8', timeout: 60_000 });
    rmSync(home, { recursive: true, force: true });
    rmSync(secrets, { recursive: true, force: true });
  }
});
