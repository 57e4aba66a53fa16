import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { createKey, ensureFirstAccount } from '../../src/engine/accounts.js';
import { migrate } from '../../src/store/migrate.js';
import type { Process } from '../helpers/cluster.js';
import { apiCaller, clusterEnv, startProcess, stopProcess } from '../helpers/cluster.js';
import { forPostgres } from '../helpers/db.js';
import { attack, attackOutcome, completedAttack, installHostile, startAttack } from '../helpers/hostile.js';
import { waitFor } from '../helpers/tessera.js';

// The hostile-app suite on a cluster: a `tessera server` holding the database URL and the sealing
// key in its environment, and a `tessera worker` agent holding its token, as an operator runs them.
// From inside a pushed app, neither process, their files, their ports nor their secrets are in reach.

const KEY = 'tsk_hostile_cluster_key_0123456789ab';

forPostgres('hostile apps on a server and a worker agent: no secret, file, port or process of either is in reach', async (db, databaseUrl, schema) => {
  await migrate(db);
  await ensureFirstAccount(db, KEY);
  const token = (await createKey(db, { scope: 'worker' })).apiKey;
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-hostile-cluster-'));
  const workerHome = mkdtempSync(path.join(tmpdir(), 'tessera-hostile-agent-'));
  const secretsKey = randomBytes(24).toString('hex');
  const metricsToken = randomBytes(16).toString('hex');
  let server: Process | undefined;
  let worker: Process | undefined;
  try {
    server = await startProcess(['server', '--port', '0', '--json'], clusterEnv(databaseUrl, schema, home, { TESSERA_SECRETS_KEY: secretsKey, TESSERA_METRICS_TOKEN: metricsToken }));
    worker = await startProcess(['worker', '--server', server.info.url, '--slots', '2', '--home', workerHome, '--json'], {
      ...clusterEnv(databaseUrl, schema, workerHome, { TESSERA_TASK_MEMORY_MB: '128', TESSERA_TASK_PROCESSES: '48' }),
      TESSERA_WORKER_TOKEN: token,
    });
    assert.match(worker.info.runtime.sandbox, /^namespaces/, JSON.stringify(worker.info.runtime));
    const api = apiCaller(server.info.url, KEY);
    await installHostile(api);
    const apiPort = Number(new URL(server.info.url).port);

    const environ = await completedAttack(api, 'environ', { needles: [secretsKey, metricsToken, token, schema, 'DATABASE_URL', 'TESSERA_WORKER_TOKEN'] });
    assert.deepEqual(environ.found, []);
    assert.ok(environ.pids.length <= 3, `the task sees only its own processes: ${environ.pids.join(', ')}`);

    const files = await completedAttack(api, 'files', { paths: [home, path.join(home, 'blobs'), workerHome, path.join(workerHome, 'cache', 'components'), path.join(workerHome, 'runtime'), `/proc/${server.child.pid}/environ`, `/proc/${worker.child.pid}/environ`] });
    for (const [where, what] of Object.entries(files.seen as Record<string, string>)) assert.match(what, /^(ENOENT|EACCES)$/, where);

    const hostAddresses = Object.values(networkInterfaces()).flat().filter((entry) => entry && entry.family === 'IPv4' && !entry.internal).map((entry) => entry!.address);
    const network = await completedAttack(api, 'network', { targets: [['127.0.0.1', apiPort], ['127.0.0.1', 5432], ['localhost', apiPort], ...hostAddresses.map((address) => [address, 5432])] });
    for (const [where, what] of Object.entries(network.outcomes as Record<string, string>)) assert.notEqual(what, 'connected', where);

    // Another account's task, running at the same time on the same agent, and the component's own files.
    const otherKey = (await createKey(db, { newAccount: true })).apiKey;
    const other = apiCaller(server.info.url, otherKey);
    await installHostile(other);
    const marker = randomBytes(8).toString('hex');
    const victim = await startAttack(other, 'victim', { marker, seconds: 6 });
    const otherAccount = (await other.call('GET', '/v1/auth/user')).body.accountId as string;
    await waitFor('the victim to write its marker', async () => existsSync(path.join(workerHome, 'cache', 'accounts', otherAccount, `victim-${marker}`)), 30_000);
    assert.deepEqual((await completedAttack(api, 'peek', { marker })).hits, []);
    assert.equal((await attackOutcome(other, victim)).job.state, 'JOB_STATE_COMPLETE');
    const writes = await completedAttack(api, 'write-component');
    for (const [where, what] of Object.entries(writes.attempts as Record<string, string>)) assert.match(what, /^(EROFS|EACCES)$/, where);

    const signals = await completedAttack(api, 'signals', { pids: [server.child.pid, worker.child.pid] });
    for (const [pid, what] of Object.entries(signals.outcomes as Record<string, string>)) assert.equal(what, 'ESRCH', `pid ${pid}`);
    assert.equal(server.child.exitCode, null, 'the server is alive');
    assert.equal(worker.child.exitCode, null, 'the worker is alive');

    const escapeMarker = randomBytes(8).toString('hex');
    const escaped = await attack(api, 'escape', { marker: escapeMarker, seconds: 60 }, { taskTimeout: 3 });
    assert.equal(escaped.job.state, 'JOB_STATE_FAILED');
    assert.match(escaped.job.errorMessage, /timed out after 3 s/);
    const accountId = (await api.call('GET', '/v1/auth/user')).body.accountId as string;
    const beat = path.join(workerHome, 'cache', 'accounts', accountId, `escape-${escapeMarker}`);
    assert.ok(existsSync(beat), 'the grandchild ran');
    const last = readFileSync(beat, 'utf8');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(readFileSync(beat, 'utf8'), last, 'the grandchild is gone: its beat stopped');

    const hog = await attack(api, 'memory', { mb: 512 });
    assert.equal(hog.job.state, 'JOB_STATE_FAILED');
    assert.match(hog.job.errorMessage, /memory limit of 128 MB/);

    const bomb = await completedAttack(api, 'forkbomb', { max: 100_000 });
    assert.equal(bomb.error, 'EAGAIN');
    assert.ok(bomb.forked < 48, `forked ${bomb.forked}`);
    assert.equal(worker.child.exitCode, null, 'the worker is alive after all of it');
  } finally {
    await stopProcess(worker);
    await stopProcess(server);
    rmSync(home, { recursive: true, force: true });
    rmSync(workerHome, { recursive: true, force: true });
  }
});
