import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createKey, ensureFirstAccount } from '../../src/engine/accounts.js';
import { migrate } from '../../src/store/migrate.js';
import type { Process } from '../helpers/cluster.js';
import { apiCaller, clusterEnv, startProcess, stopProcess } from '../helpers/cluster.js';
import { endedJob, firstResult } from '../helpers/components.js';
import { openSchemaDb } from '../helpers/db.js';
import { waitFor } from '../helpers/tessera.js';

// The fleet heals itself: servers and worker agents outlive a PostgreSQL restart and a 20-second
// stop under a running job, and agents outlive every server being gone, with nothing lost or
// counted twice. The database is a cluster of the tests' own (scripts/chaos-postgres.sh, port
// 5433), never the shared one the other tests use.

const DATABASE_URL = process.env.TESSERA_TEST_CHAOS_DATABASE_URL;
const CLUSTER = process.env.TESSERA_TEST_CHAOS_CLUSTER?.split(' ');
const REQUIRED = process.env.REQUIRE_SERVICES === '1';
const skip = DATABASE_URL && CLUSTER?.length === 2 ? false : REQUIRED ? false : 'TESSERA_TEST_CHAOS_DATABASE_URL is not set (run: eval "$(bash scripts/chaos-postgres.sh)")';
if (skip) console.error(`\n*** database outage tests SKIPPED: ${skip}. ***\n`);

const KEY = 'tsk_outage_test_key_0123456789abcdef';

function postgres(action: 'restart' | 'stop' | 'start'): void {
  const result = spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', CLUSTER![0]!, CLUSTER![1]!, action, ...(action === 'start' ? [] : ['-m', 'fast'])], { encoding: 'utf8' });
  assert.equal(result.status, 0, `pg_ctlcluster ${action}: ${result.stderr}`);
}

/** A text whose word counts are known: word i is "w" + (i mod 53). */
function text(words: number): { body: string; counts: Record<string, number> } {
  const list = Array.from({ length: words }, (_, index) => `w${index % 53}`);
  const counts: Record<string, number> = {};
  for (const word of list) counts[word] = (counts[word] ?? 0) + 1;
  return { body: list.join(' '), counts };
}

const alive = (process: Process) => process.child.exitCode === null && process.child.signalCode === null;

test('servers and worker agents outlive a database restart and a 20 s stop under a running job, which completes exactly', { skip, timeout: 600_000 }, async () => {
  assert.ok(DATABASE_URL && CLUSTER?.length === 2, 'REQUIRE_SERVICES=1 requires the chaos PostgreSQL cluster (scripts/chaos-postgres.sh)');
  const { db, schema, drop } = await openSchemaDb(DATABASE_URL);
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-outage-'));
  const input = text(12_000);
  const source = http.createServer((_request, response) => response.end(input.body));
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  const processes: Process[] = [];
  try {
    await migrate(db);
    await ensureFirstAccount(db, KEY);
    const token = (await createKey(db, { scope: 'worker' })).apiKey;
    const env = clusterEnv(DATABASE_URL, schema, home, { TESSERA_LEASE_SECONDS: '5' });
    const servers = [await startProcess(['server', '--port', '0', '--json'], env), await startProcess(['server', '--port', '0', '--json'], env)];
    processes.push(...servers);
    const urls = servers.map((server) => server.info.url).join(',');
    for (let index = 0; index < 2; index++) processes.push(await startProcess(['worker', '--server', urls, '--token', token, '--slots', '2', '--json'], env));
    const api = apiCaller(servers[0]!.info.url, KEY);
    const created = await api.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url: `http://127.0.0.1:${(source.address() as AddressInfo).port}/input.txt` } }, params: { partitioner: { chunks: 400 } } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const jobId = created.body.job.id as string;
    await api.call('POST', `/v1/customer/jobs/${jobId}/run`);
    const progress = async () => (await api.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
    await waitFor('some chunks to be done', async () => {
      const job = await progress().catch(() => undefined);
      return job && job.state === 'JOB_STATE_PARTITIONED' && Number(job.completedChunks ?? 0) >= 0;
    }, 120_000);

    // A restart under load.
    postgres('restart');
    // A stop of 20 s: customer calls are told the database is away and when to retry.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    postgres('stop');
    try {
      const answer = await fetch(`${servers[1]!.info.url}/v1/customer/jobs/${jobId}`, { headers: { authorization: `Bearer ${KEY}` } });
      // The key may be remembered, or not: either way the database's absence is a 503, code 14.
      const body = (await answer.json()) as { code: number; message: string };
      assert.equal(answer.status, 503, JSON.stringify(body));
      assert.equal(body.code, 14);
      assert.equal(answer.headers.get('retry-after'), '5');
      await new Promise((resolve) => setTimeout(resolve, 20_000));
      for (const process of processes) assert.ok(alive(process), `a process ended while the database was away:\n${process.output().slice(-3000)}`);
    } finally {
      postgres('start');
    }

    const job = await endedJob(api, jobId, 420_000);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    assert.deepEqual(JSON.parse(await firstResult(api, jobId)), input.counts, 'each chunk counted exactly once');
    for (const process of processes) assert.ok(alive(process), `a process ended:\n${process.output().slice(-3000)}`);
  } catch (error) {
    for (const [index, process] of processes.entries()) console.error(`--- process ${index} (exit ${process.child.exitCode ?? process.child.signalCode ?? 'running'}):\n${process.output().slice(-3000)}`);
    throw error;
  } finally {
    for (const process of processes) await stopProcess(process);
    source.close();
    await drop().catch(() => {});
    rmSync(home, { recursive: true, force: true });
  }
});

test('worker agents whose every server is gone for 10 s keep running, and resume when one is back', { skip, timeout: 180_000 }, async () => {
  assert.ok(DATABASE_URL, 'REQUIRE_SERVICES=1 requires the chaos PostgreSQL cluster (scripts/chaos-postgres.sh)');
  const { db, schema, drop } = await openSchemaDb(DATABASE_URL);
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-no-server-'));
  let server: Process | undefined;
  let worker: Process | undefined;
  try {
    await migrate(db);
    await ensureFirstAccount(db, KEY);
    const token = (await createKey(db, { scope: 'worker' })).apiKey;
    const env = clusterEnv(DATABASE_URL, schema, home);
    server = await startProcess(['server', '--port', '0', '--json'], env);
    const port = new URL(server.info.url).port;
    worker = await startProcess(['worker', '--server', server.info.url, '--token', token, '--slots', '1', '--json'], env);
    await stopProcess(server, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    assert.ok(alive(worker), `the worker ended with no server:\n${worker.output().slice(-3000)}`);
    assert.match(worker.output(), /cannot lease tasks: .*retrying in/);
    // The same address again: the worker finds it and runs a job.
    server = await startProcess(['server', '--port', port, '--json'], env);
    const api = apiCaller(server.info.url, KEY);
    const created = await api.call('POST', '/v1/customer/jobs', { templateId: 'noop', params: { partitioner: { chunks: 3 } } });
    await api.call('POST', `/v1/customer/jobs/${created.body.job.id}/run`);
    const job = await endedJob(api, created.body.job.id, 120_000);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    assert.match(worker.output(), /leasing works again/);
  } finally {
    await stopProcess(worker);
    await stopProcess(server);
    await drop().catch(() => {});
    rmSync(home, { recursive: true, force: true });
  }
});
