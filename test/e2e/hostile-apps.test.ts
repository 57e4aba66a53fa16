import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { withFreshDb } from '../helpers/db.js';
import { attack, attackOutcome, completedAttack, installHostile, startAttack } from '../helpers/hostile.js';
import { firstResult, runToEnd } from '../helpers/components.js';
import type { TestTessera } from '../helpers/tessera.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// The hostile-app suite, embedded: a tenant pushes an ordinary-looking python app and, from inside
// its tasks, tries what issue 11 found working: reading other processes' environments, the data
// folder, another account's running task and another component, writing its own component,
// reaching the API and PostgreSQL on loopback, killing the server, outliving its timeout, eating
// memory, forking without end. Every attempt must fail, and ordinary apps must still be exact.

const MEMORY_MB = 128;
const PROCESSES = 48;
const FILE_MB = 8;
const OUTPUT_MB = 12;

/** The host's own addresses other than loopback (a task must not reach the host through them either). */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces()).flat().filter((entry) => entry && entry.family === 'IPv4' && !entry.internal).map((entry) => entry!.address);
}

/** A process holding a secret in its environment, as a server does (the canary a task must not read). */
function canary(secret: string) {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env: { PATH: process.env.PATH, TESSERA_SECRETS_KEY: secret }, stdio: 'ignore' });
  return child;
}

async function listen(): Promise<{ port: number; close: () => Promise<void> }> {
  // On every address: a task must not reach the host's services by its own addresses either.
  const server = http.createServer((_request, response) => response.end('host service'));
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('hostile apps, embedded: nothing a task tries reaches the host, the data folder, other tasks or other accounts', { timeout: 300_000 }, async (t) => {
  await withFreshDb('pglite', async (db) => {
    const secret = `canary-${randomBytes(12).toString('hex')}`;
    const victimProcess = canary(secret);
    const hostService = await listen();
    let tessera: TestTessera | undefined;
    try {
      tessera = await startTestTessera(db, { taskMemoryBytes: MEMORY_MB * 2 ** 20, taskProcesses: PROCESSES, taskMaxFileBytes: FILE_MB * 2 ** 20, taskMaxOutputBytes: OUTPUT_MB * 2 ** 20, secretsKey: secret.padEnd(40, 'x') });
      const other = { call: (method: string, route: string, body?: unknown) => tessera!.call(method, route, body, tessera!.otherApiKey) };
      await installHostile(tessera);
      await installHostile(other);
      const home = tessera.config.home;
      const accountOf = async (key: string) => (await tessera!.call('GET', '/v1/auth/user', undefined, key)).body.accountId as string;
      const [accountA, accountB] = [await accountOf(tessera.apiKey), await accountOf(tessera.otherApiKey)];
      const api = tessera;

      await t.test('the task runs as an unprivileged user, with no capabilities and no way back to root', async () => {
        const seen = await completedAttack(api, 'whoami');
        if (process.getuid?.() === 0) assert.equal(seen.uid, 65534);
        assert.equal(seen.capEff, '0000000000000000');
        assert.equal(seen.capBnd, '0000000000000000');
        assert.equal(seen.noNewPrivs, '1');
        assert.equal(seen.setuid, 'EPERM');
        assert.equal(seen.hostname, 'tessera');
        assert.deepEqual(seen.tmp, [], 'its /tmp is its own and empty');
      });

      await t.test('no other process is visible, and no environment holds a secret', async () => {
        const seen = await completedAttack(api, 'environ', { needles: [secret, 'TESSERA_SECRETS_KEY', 'TESSERA_TEST_DATABASE_URL', 'DATABASE_URL'] });
        assert.deepEqual(seen.found, []);
        assert.ok(seen.pids.length <= 3, `the task sees only its own processes: ${seen.pids.join(', ')}`);
        assert.ok(!seen.pids.includes(process.pid) || process.pid <= 3);
      });

      await t.test('the data folder, database, blobs, caches, runtime folder and the host\'s /proc are not there', async () => {
        const paths = [home, path.join(home, 'db'), path.join(home, 'blobs'), path.join(home, 'cache', 'components'), path.join(home, 'cache', 'accounts', accountB), path.join(home, 'runtime'), tessera!.config.workDir, `/proc/${process.pid}/environ`, `/proc/${victimProcess.pid}/environ`, '/root', '/tasks', '/.io'];
        const seen = (await completedAttack(api, 'files', { paths })).seen as Record<string, string>;
        for (const [where, what] of Object.entries(seen)) {
          assert.ok(/^(ENOENT|EACCES|EPERM)$/.test(what) || (where === '/tasks' && what === 'listed: ') || (where === '/.io' && what === 'listed: ') || (where === '/root' && /^listed: (\.pyenv)?$/.test(what)), `${where}: ${what}`);
        }
      });

      await t.test("another account's task, running at the same time, cannot be seen", async () => {
        const marker = randomBytes(8).toString('hex');
        const victimJob = await startAttack(other, 'victim', { marker, seconds: 6 });
        // Once the victim has written its marker (it is in B's cache folder on the host).
        await waitFor('the victim to write its marker', async () => existsSync(path.join(home, 'cache', 'accounts', accountB, `victim-${marker}`)), 30_000);
        const seen = await completedAttack(api, 'peek', { marker });
        assert.deepEqual(seen.hits, []);
        const victim = await attackOutcome(other, victimJob);
        assert.equal(victim.job.state, 'JOB_STATE_COMPLETE', victim.job.errorMessage);
        // And the victim's own later task sees its files, none of A's.
        assert.ok(!readdirSync(path.join(home, 'cache', 'accounts', accountA)).some((name) => name.includes(marker)));
      });

      await t.test('the component is read-only, and the next job of another account runs it unchanged', async () => {
        const components = path.join(home, 'cache', 'components');
        const folders = () => readdirSync(components).filter((name) => /^[0-9a-f]{64}$/.test(name));
        const before = folders().map((sha) => readFileSync(path.join(components, sha, 'app', 'main.py'), 'utf8'));
        const seen = await completedAttack(api, 'write-component');
        // Refused twice over: the files are not the task user's (EACCES), and the mount is read-only (EROFS).
        for (const [where, what] of Object.entries(seen.attempts as Record<string, string>)) assert.match(what, /^(EROFS|EACCES)$/, where);
        const after = folders().map((sha) => readFileSync(path.join(components, sha, 'app', 'main.py'), 'utf8'));
        assert.deepEqual(after, before);
        const whoami = await completedAttack(other, 'whoami');
        assert.equal(whoami.capEff, '0000000000000000');
      });

      await t.test('loopback, the host\'s own addresses and private ranges are out of reach', async () => {
        const apiPort = Number(new URL(tessera!.url).port);
        const targets = [['127.0.0.1', apiPort], ['127.0.0.1', 5432], ['127.0.0.1', hostService.port], ...hostAddresses().flatMap((address) => [[address, apiPort], [address, hostService.port]]), ['10.0.2.2', hostService.port], ['169.254.169.254', 80]];
        const seen = await completedAttack(api, 'network', { targets });
        for (const [where, what] of Object.entries(seen.outcomes as Record<string, string>)) assert.notEqual(what, 'connected', where);
      });

      await t.test('the server and other processes cannot be signalled', async () => {
        const seen = await completedAttack(api, 'signals', { pids: [process.pid, victimProcess.pid, process.ppid] });
        for (const [pid, what] of Object.entries(seen.outcomes as Record<string, string>)) assert.equal(what, 'ESRCH', `pid ${pid}`);
        assert.equal(victimProcess.exitCode, null, 'the canary process is alive');
        assert.ok((await tessera!.call('GET', '/healthz')).status === 200);
      });

      await t.test('a grandchild that left its process group dies with its task at the timeout', async () => {
        const marker = randomBytes(8).toString('hex');
        const outcome = await attack(api, 'escape', { marker, seconds: 60 }, { taskTimeout: 3 });
        assert.equal(outcome.job.state, 'JOB_STATE_FAILED');
        assert.match(outcome.job.errorMessage, /timed out after 3 s/);
        const beat = path.join(home, 'cache', 'accounts', accountA, `escape-${marker}`);
        assert.ok(existsSync(beat), 'the grandchild ran');
        const last = readFileSync(beat, 'utf8');
        await new Promise((resolve) => setTimeout(resolve, 1500));
        assert.equal(readFileSync(beat, 'utf8'), last, 'the grandchild is gone: its beat stopped');
        await waitFor('the task folders to be removed', async () => readdirSync(tessera!.config.workDir).length === 0, 10_000);
      });

      await t.test('a memory hog is stopped at its limit, and the job says so', async () => {
        const outcome = await attack(api, 'memory', { mb: 4 * MEMORY_MB });
        assert.equal(outcome.job.state, 'JOB_STATE_FAILED');
        assert.match(outcome.job.errorMessage, new RegExp(`memory limit of ${MEMORY_MB} MB`));
      });

      await t.test('a fork bomb stops at the process limit and the machine carries on', async () => {
        const seen = await completedAttack(api, 'forkbomb', { max: 100_000 });
        assert.equal(seen.error, 'EAGAIN');
        assert.ok(seen.forked < PROCESSES, `forked ${seen.forked}`);
        const again = await completedAttack(api, 'whoami');
        assert.equal(again.noNewPrivs, '1');
      });

      await t.test('a file past the size limit is refused', async () => {
        const seen = await completedAttack(api, 'big-file', { mb: 2 * FILE_MB });
        assert.equal(seen.written, 'EFBIG');
      });

      await t.test('files past what a task may hand over in all are refused, naming the limit', async () => {
        const outcome = await attack(api, 'many-files', { files: 5, mb: 3 });
        assert.equal(outcome.job.state, 'JOB_STATE_FAILED');
        assert.match(outcome.job.errorMessage, new RegExp(`more than its limit of ${OUTPUT_MB} MB in files \\(TESSERA_TASK_MAX_OUTPUT_MB\\)`));
      });

      await t.test('the ordinary word-count app is still exact', async () => {
        const source = `http://127.0.0.1:${hostService.port}/text.txt`;
        const job = await runToEnd(api, { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url: source } }, params: { partitioner: { chunks: 2 } } });
        assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
        assert.deepEqual(JSON.parse(await firstResult(api, job.id)), { host: 1, service: 1 });
      });
    } finally {
      await tessera?.stop();
      victimProcess.kill('SIGKILL');
      await hostService.close();
    }
  });
});
