import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import { withFreshDb } from '../helpers/db.js';
import { firstResult, installComponents, installTemplate, runToEnd } from '../helpers/components.js';
import type { TestTessera } from '../helpers/tessera.js';
import { startTestTessera } from '../helpers/tessera.js';

// A task's network. By default none; an app that asks for the public internet gets it only where
// the operator allows it (TESSERA_TASK_NETWORK=public), and then still reaches neither loopback,
// nor a private range, nor the worker's own addresses. "The internet" here is a host of the test's
// own in a network namespace, on an address outside every private range (this machine has no
// route to the real one but a registry proxy on a documentation address, which is refused too).

const ROOT = process.getuid?.() === 0;
const HAS_IP = spawnSync('ip', ['-V']).status === 0;
const HAS_SLIRP = spawnSync('slirp4netns', ['--version']).status === 0;
const REQUIRED = process.env.REQUIRE_SERVICES === '1';
const skip = ROOT && HAS_IP && (HAS_SLIRP || REQUIRED) ? false : 'needs root, iproute2 and slirp4netns (apt-get install slirp4netns)';
if (skip) console.error(`\n*** task network tests SKIPPED: ${skip}. ***\n`);

/** Tries each target and says what happened: "connected: <first line>" or the error's name. */
const PROBE_APP = `import json, os, socket
targets = json.loads(os.environ["APP_PARAMS"])["targets"]
seen = {}
for host, port in targets:
    try:
        with socket.create_connection((host, port), timeout=3) as connection:
            connection.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
            seen["%s:%d" % (host, port)] = "connected: " + connection.recv(200).decode("latin1").split("\\r\\n\\r\\n")[-1]
    except OSError as error:
        seen["%s:%d" % (host, port)] = type(error).__name__
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "seen.json"), "w").write(json.dumps(seen))
`;

/** A host on a network namespace of its own, reached over a veth pair: the test's "internet". */
async function outsideHost(): Promise<{ address: string; hostSide: string; port: number; close: () => void }> {
  const id = randomBytes(3).toString('hex');
  const namespace = `tessera-net-${id}`;
  const [outer, inner] = [`tsh${id}`, `tsn${id}`];
  const octet = 1 + (parseInt(id.slice(0, 2), 16) % 250);
  const [hostSide, address] = [`100.130.${octet}.1`, `100.130.${octet}.2`];
  const ip = (...args: string[]) => {
    const result = spawnSync('ip', args, { encoding: 'utf8' });
    assert.equal(result.status, 0, `ip ${args.join(' ')}: ${result.stderr}`);
  };
  ip('netns', 'add', namespace);
  ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
  ip('link', 'set', inner, 'netns', namespace);
  ip('addr', 'add', `${hostSide}/30`, 'dev', outer);
  ip('link', 'set', outer, 'up');
  ip('netns', 'exec', namespace, 'ip', 'addr', 'add', `${address}/30`, 'dev', inner);
  ip('netns', 'exec', namespace, 'ip', 'link', 'set', inner, 'up');
  ip('netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up');
  const server: ChildProcess = spawn('ip', ['netns', 'exec', namespace, process.execPath, '-e', `require('http').createServer((q, s) => s.end('outside host')).listen(8080, ${JSON.stringify(address)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => server.stdout!.once('data', resolve));
  return {
    address,
    hostSide,
    port: 8080,
    close() {
      server.kill('SIGKILL');
      spawnSync('ip', ['link', 'del', outer]);
      spawnSync('ip', ['netns', 'del', namespace]);
    },
  };
}

async function probe(tessera: TestTessera, templateId: string, targets: [string, number][]): Promise<{ job: any; seen?: Record<string, string> }> {
  const job = await runToEnd(tessera, { templateId, dataSource: { dataSourceDescriptor: 'bypass' }, params: { app: { targets } } });
  return job.state === 'JOB_STATE_COMPLETE' ? { job, seen: JSON.parse(await firstResult(tessera, job.id)) as Record<string, string> } : { job };
}

async function install(tessera: TestTessera): Promise<void> {
  await installComponents(tessera, [
    { name: 'online', type: 'app', entrypoint: 'main.py', code: PROBE_APP, network: 'public' },
    { name: 'offline', type: 'app', entrypoint: 'main.py', code: PROBE_APP },
  ]);
  for (const app of ['online', 'offline']) await installTemplate(tessera, { id: app, description: '', app, partitioner: 'passthrough', assembler: 'passthrough', config: { maxTaskRetries: 0 } });
}

test('an app that asks for the public internet reaches it where the operator allows, and never loopback, private ranges or the worker', { skip, timeout: 120_000 }, async () => {
  await withFreshDb('pglite', async (db) => {
    const outside = await outsideHost();
    const local = http.createServer((_request, response) => response.end('host service'));
    await new Promise<void>((resolve) => local.listen(0, '0.0.0.0', resolve));
    const localPort = (local.address() as AddressInfo).port;
    const tessera = await startTestTessera(db, { taskNetwork: 'public' });
    try {
      await install(tessera);
      const own = Object.values(networkInterfaces()).flat().filter((entry) => entry && entry.family === 'IPv4' && !entry.internal).map((entry) => entry!.address);
      const refused: [string, number][] = [['127.0.0.1', localPort], [outside.hostSide, localPort], ...own.map((address) => [address, localPort] as [string, number]), ['10.0.2.2', localPort], ['169.254.169.254', 80], ['10.255.255.53', 53], ['203.0.113.80', 443]];
      const online = await probe(tessera, 'online', [[outside.address, outside.port], ...refused]);
      assert.equal(online.job.state, 'JOB_STATE_COMPLETE', online.job.errorMessage);
      assert.equal(online.seen![`${outside.address}:${outside.port}`], 'connected: outside host');
      for (const [host, port] of refused) assert.ok(!online.seen![`${host}:${port}`]!.startsWith('connected'), `${host}:${port}: ${online.seen![`${host}:${port}`]}`);
      // An app that did not ask has no network at all, on the same worker.
      const offline = await probe(tessera, 'offline', [[outside.address, outside.port]]);
      assert.equal(offline.job.state, 'JOB_STATE_COMPLETE', offline.job.errorMessage);
      assert.ok(!offline.seen![`${outside.address}:${outside.port}`]!.startsWith('connected'));
    } finally {
      await tessera.stop();
      local.close();
      outside.close();
    }
  });
});

test('where the operator has not allowed it, an app that asks for the internet fails with a clear error', { timeout: 60_000 }, async () => {
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db);
    try {
      assert.equal(tessera.runtime.description.network, 'none');
      await install(tessera);
      const { job } = await probe(tessera, 'online', []);
      assert.equal(job.state, 'JOB_STATE_FAILED');
      assert.match(job.errorMessage, /online@1\.0 asks for the public internet \(platform_config\.network "public"\), and this worker gives tasks no network/);
    } finally {
      await tessera.stop();
    }
  });
});
