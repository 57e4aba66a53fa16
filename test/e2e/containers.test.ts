import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { withFreshDb } from '../helpers/db.js';
import type { ApiCaller } from '../helpers/components.js';
import { firstResult, installComponents, installTemplate, runToEnd } from '../helpers/components.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// Components that name an image (platform_config.container) run in it, with podman, when the
// worker does not map the image to its host: the image is built locally from Debian's packages by
// scripts/test-image.sh (no registry is reachable here), which .ci/run runs.

const IMAGE = process.env.TESSERA_TEST_IMAGE;
const REQUIRED = process.env.REQUIRE_SERVICES === '1';
const skip = IMAGE || REQUIRED ? false : 'TESSERA_TEST_IMAGE is not set (run: eval "$(bash scripts/test-image.sh)")';
if (skip) console.error(`\n*** container tests SKIPPED: ${skip}. ***\n`);

// What a task sees inside the image: its python (the image's), its folders, its user, its network.
const IN_IMAGE_APP = `import json, os, socket, sys
params = json.loads(os.environ["APP_PARAMS"])
seen = {"python": sys.executable, "debian": open("/etc/debian_version").read().strip(), "uid": os.getuid(),
        "component": sorted(os.listdir("/component/app")), "chunk": open(os.path.join(os.environ["TASK_DIR"], "data.bin")).read()}
try:
    socket.create_connection(("127.0.0.1", params["port"]), timeout=2).close()
    seen["loopback"] = "connected"
except OSError as error:
    seen["loopback"] = type(error).__name__
print("hello from the image", flush=True)
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "seen.json"), "w").write(json.dumps(seen))
`;

const MEMORY_HOG_APP = `held = []
for _ in range(64):
    block = bytearray(16 * 1024 * 1024)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    held.append(block)
`;

const SLEEPER_APP = 'import time\ntime.sleep(120)\n';

function run(api: ApiCaller, templateId: string, extra: Record<string, unknown> = {}): Promise<any> {
  return runToEnd(api, { templateId, ...extra });
}

/** Containers of Tessera's left on the machine (every task's container is removed when it ends). */
function tesseraContainers(): string[] {
  const listed = spawnSync('podman', ['ps', '--all', '--format', '{{.Names}}'], { encoding: 'utf8' });
  return listed.stdout.split('\n').filter((name) => name.startsWith('tessera-'));
}

test('a component naming an image runs in it with podman: its folders, an unprivileged user, no network, limits, and nothing left after', { skip, timeout: 300_000 }, async (t) => {
  assert.ok(IMAGE, 'TESSERA_TEST_IMAGE is not set, and REQUIRE_SERVICES=1 requires the container tests (run scripts/test-image.sh)');
  await withFreshDb('pglite', async (db) => {
    const source = http.createServer((_request, response) => response.end('chunk text'));
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    const port = (source.address() as AddressInfo).port;
    // No image is mapped to the host: every component that names one runs in a container.
    const tessera = await startTestTessera(db, { hostImages: [], taskMemoryBytes: 256 * 2 ** 20 });
    try {
      await installComponents(tessera, [
        { name: 'in-image', type: 'app', entrypoint: 'main.py', code: IN_IMAGE_APP, image: IMAGE! },
        { name: 'image-hog', type: 'app', entrypoint: 'main.py', code: MEMORY_HOG_APP, image: IMAGE! },
        { name: 'image-sleeper', type: 'app', entrypoint: 'main.py', code: SLEEPER_APP, image: IMAGE! },
      ]);
      for (const app of ['in-image', 'image-hog', 'image-sleeper']) {
        await installTemplate(tessera, { id: app, description: '', app, partitioner: 'passthrough', assembler: 'passthrough', config: { maxTaskRetries: 0 } });
      }

      await t.test('the worker says what runs its images', async () => {
        assert.match(tessera.runtime.description.containers ?? '', /^podman \d/);
        assert.ok(tessera.runtime.description.images.some((image) => IMAGE!.endsWith(image.replace(/^localhost\//, '')) || image === IMAGE), tessera.runtime.description.images.join(', '));
        const workers = await tessera.call('GET', '/v1/operator/workers', undefined, tessera.operatorKey);
        assert.match(workers.body.data[0].runtime.containers, /^podman/);
      });

      await t.test('the task runs in the image, with its chunk at /task and the component at /component', async () => {
        const job = await run(tessera, 'in-image', { dataSource: { dataSourceDescriptor: 'url', params: { url: `http://127.0.0.1:${port}/chunk.txt` } }, params: { app: { port } } });
        assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
        const seen = JSON.parse(await firstResult(tessera, job.id)) as Record<string, unknown>;
        assert.equal(seen.python, '/usr/bin/python3', 'the image\'s python, not the host\'s');
        assert.match(String(seen.debian), /^12\./);
        if (process.getuid?.() === 0) assert.equal(seen.uid, 65534);
        assert.deepEqual(seen.component, ['main.py']);
        assert.equal(seen.chunk, 'chunk text');
        assert.notEqual(seen.loopback, 'connected');
        const logs = await tessera.call('GET', `/v1/customer/jobs/${job.id}/logs`);
        assert.ok(JSON.stringify(logs.body).includes('hello from the image'), 'its output is the task\'s log');
        assert.ok(job.usage && Number(job.usage.cpuSeconds) >= 0);
      });

      await t.test('a memory hog is stopped at its limit, and the job says so', async () => {
        const job = await run(tessera, 'image-hog');
        assert.equal(job.state, 'JOB_STATE_FAILED');
        assert.match(job.errorMessage, /memory limit of 256 MB/);
      });

      await t.test('a private image\'s credentials, from the manifest or an account secret, are used and never shown', async () => {
        const token = 'registry-token-0123456789abcdef';
        await installComponents(tessera, [
          { name: 'private-literal', type: 'app', entrypoint: 'main.py', code: 'print(1)\n', image: 'registry.invalid/team/app:1', registry: { username: 'robot', token } },
          { name: 'private-secret', type: 'app', entrypoint: 'main.py', code: 'print(1)\n', image: 'registry.invalid/team/app:1', registry: { username: 'robot', token: 'secret:registry-key' } },
        ]);
        for (const app of ['private-literal', 'private-secret']) await installTemplate(tessera, { id: app, description: '', app, partitioner: 'passthrough', assembler: 'passthrough', config: { maxTaskRetries: 0 } });
        // No registry can be reached here: the pull fails, saying so, and the token is nowhere in what Tessera shows.
        const literal = await run(tessera, 'private-literal');
        assert.equal(literal.state, 'JOB_STATE_FAILED');
        assert.match(literal.errorMessage, /could not run the image "registry\.invalid\/team\/app:1" \(it is not on this worker and could not be pulled/);
        const missing = await run(tessera, 'private-secret');
        assert.equal(missing.state, 'JOB_STATE_FAILED');
        assert.match(missing.errorMessage, /this account has no other secret "registry-key"/);
        const saved = await tessera.call('POST', '/v1/auth/secrets', { secret: { id: 'registry-key', secretType: 'other', accessKey: 'robot' }, secretKey: token });
        assert.equal(saved.status, 200, JSON.stringify(saved.body));
        const opened = await run(tessera, 'private-secret');
        assert.match(opened.errorMessage, /could not be pulled/);
        for (const job of [literal, opened]) {
          const logs = await tessera.call('GET', `/v1/customer/jobs/${job.id}/logs`);
          assert.ok(!JSON.stringify(job).includes(token) && !JSON.stringify(logs.body).includes(token), 'the token is shown nowhere');
        }
      });

      await t.test('a timeout removes the container and everything in it', async () => {
        const job = await run(tessera, 'image-sleeper', { config: { taskTimeout: 2 } });
        assert.equal(job.state, 'JOB_STATE_FAILED');
        assert.match(job.errorMessage, /timed out after 2 s/);
        await waitFor('the container to be removed', async () => tesseraContainers().length === 0, 20_000);
      });
    } finally {
      await tessera.stop();
      source.close();
    }
    assert.deepEqual(tesseraContainers(), []);
  });
});

test('an image that no connected worker can run fails its job after the grace period, naming the image and what to install', { timeout: 120_000 }, async () => {
  await withFreshDb('pglite', async (db) => {
    // No container runtime and no image mapped to the host: this worker cannot run the app.
    const tessera = await startTestTessera(db, { hostImages: [], containerRuntime: 'off', unservedGraceSeconds: 1 });
    try {
      await installComponents(tessera, [{ name: 'needs-image', type: 'app', entrypoint: 'main.py', code: 'print(1)\n', image: 'registry.example.com/team/whisper:2' }]);
      await installTemplate(tessera, { id: 'needs-image', description: '', app: 'needs-image', partitioner: 'passthrough', assembler: 'passthrough' });
      assert.equal(tessera.runtime.description.containers, null);
      const job = await run(tessera, 'needs-image');
      assert.equal(job.state, 'JOB_STATE_FAILED');
      assert.match(job.errorMessage, /no connected worker can run chunk 0: it needs a worker of the shared pool or of the account.s own pool with the image registry\.example\.com\/team\/whisper:2 \(install podman on a worker, or map the image to a worker's host sandbox with TESSERA_HOST_IMAGES=registry\.example\.com\/team\/whisper:\*\)/);
    } finally {
      await tessera.stop();
    }
  });
});

const REGISTRY_IMAGE = process.env.TESSERA_TEST_REGISTRY_IMAGE;
const REGISTRY_USER = process.env.TESSERA_TEST_REGISTRY_USER ?? '';
const REGISTRY_PASSWORD = process.env.TESSERA_TEST_REGISTRY_PASSWORD ?? '';
const registrySkip = REGISTRY_IMAGE || REQUIRED ? false : 'TESSERA_TEST_REGISTRY_IMAGE is not set (run: eval "$(bash scripts/test-registry.sh)")';
if (registrySkip) console.error(`\n*** private registry test SKIPPED: ${registrySkip}. ***\n`);

test('a private image is pulled with the credentials of its manifest or of an account secret, and refused with wrong ones', { skip: registrySkip, timeout: 300_000 }, async () => {
  assert.ok(REGISTRY_IMAGE, 'TESSERA_TEST_REGISTRY_IMAGE is not set, and REQUIRE_SERVICES=1 requires the private registry test (run scripts/test-registry.sh)');
  // Only the registry has it: each run must pull it.
  const forget = () => spawnSync('podman', ['rmi', '--force', REGISTRY_IMAGE!]);
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db, { hostImages: [] });
    try {
      const app = 'import os, sys\nopen(os.path.join(os.environ["TASK_RESULTS_DIR"], "python.txt"), "w").write(sys.executable)\n';
      await installComponents(tessera, [
        { name: 'from-secret', type: 'app', entrypoint: 'main.py', code: app, image: REGISTRY_IMAGE!, registry: { username: REGISTRY_USER, token: 'secret:registry' } },
        { name: 'from-manifest', type: 'app', entrypoint: 'main.py', code: app, image: REGISTRY_IMAGE!, registry: { username: REGISTRY_USER, token: REGISTRY_PASSWORD } },
        { name: 'wrong-token', type: 'app', entrypoint: 'main.py', code: app, image: REGISTRY_IMAGE!, registry: { username: REGISTRY_USER, token: 'not-the-password' } },
      ]);
      for (const id of ['from-secret', 'from-manifest', 'wrong-token']) await installTemplate(tessera, { id, description: '', app: id, partitioner: 'passthrough', assembler: 'passthrough', config: { maxTaskRetries: 0 } });
      const saved = await tessera.call('POST', '/v1/auth/secrets', { secret: { id: 'registry', secretType: 'other', accessKey: REGISTRY_USER }, secretKey: REGISTRY_PASSWORD });
      assert.equal(saved.status, 200, JSON.stringify(saved.body));
      for (const id of ['from-secret', 'from-manifest']) {
        forget();
        const job = await run(tessera, id);
        assert.equal(job.state, 'JOB_STATE_COMPLETE', `${id}: ${job.errorMessage}`);
        assert.equal(await firstResult(tessera, job.id), '/usr/bin/python3');
      }
      forget();
      const refused = await run(tessera, 'wrong-token');
      assert.equal(refused.state, 'JOB_STATE_FAILED');
      assert.match(refused.errorMessage, /could not be pulled/);
      assert.match(refused.errorMessage, /unauthorized|authentication required|invalid username\/password/i);
      assert.ok(!JSON.stringify(refused).includes(REGISTRY_PASSWORD));
    } finally {
      await tessera.stop();
      forget();
    }
  });
});
