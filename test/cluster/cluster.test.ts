import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createKey, ensureFirstAccount } from '../../src/engine/accounts.js';
import type { Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import type { Process } from '../helpers/cluster.js';
import { apiCaller, clusterEnv, startProcess, stopProcess } from '../helpers/cluster.js';
import { installComponents, installTemplate } from '../helpers/components.js';
import { forPostgres } from '../helpers/db.js';
import { waitFor } from '../helpers/tessera.js';

// Tessera as a cluster of real processes on the PostgreSQL server: `tessera server` replicas and
// `tessera worker` agents talking HTTP, then the same with workers and a server killed mid-job.

const KEY = 'tsk_cluster_test_key_0123456789abcdef';

/** A text of `words` words whose counts are known: word i is "w" + (i mod 97). */
function text(words: number): { body: string; counts: Record<string, number> } {
  const list = Array.from({ length: words }, (_, index) => `w${index % 97}`);
  const counts: Record<string, number> = {};
  for (const word of list) counts[word] = (counts[word] ?? 0) + 1;
  return { body: list.map((word, index) => (index % 12 === 11 ? `${word}\n` : `${word} `)).join(''), counts };
}

async function serve(body: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((_request, response) => response.writeHead(200).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/input.txt`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function api(base: string, method: string, route: string, body?: unknown): Promise<any> {
  const response = await fetch(`${base}${route}`, { method, headers: { authorization: KEY, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return response.json();
}

const caller = (base: string) => apiCaller(base, KEY);

async function setUp(db: Db): Promise<string> {
  await migrate(db);
  await ensureFirstAccount(db, KEY);
  return (await createKey(db, { scope: 'worker' })).apiKey;
}

async function runWordCount(servers: Process[], source: string, chunks: number, config: Record<string, number> = {}): Promise<string> {
  const base = servers[servers.length - 1]!.info.url;
  const created = await api(base, 'POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url: source } }, params: { partitioner: { chunks } }, config });
  assert.ok(created.job, JSON.stringify(created));
  await api(base, 'POST', `/v1/customer/jobs/${created.job.id}/run`);
  return created.job.id;
}

async function finishedJob(base: () => string, jobId: string, timeoutMs: number): Promise<any> {
  return waitFor(`job ${jobId} to finish`, async () => {
    const { job } = await api(base(), 'GET', `/v1/customer/jobs/${jobId}`);
    return job && ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(job.state) ? job : undefined;
  }, timeoutMs);
}

async function downloadedCounts(base: string, jobId: string): Promise<Record<string, number>> {
  const { results } = await api(base, 'GET', `/v1/customer/jobs/${jobId}/results`);
  return (await fetch(results.find((result: { name: string }) => result.name === 'counts.json').link)).json() as Promise<Record<string, number>>;
}

forPostgres('two server replicas and three worker agents run a 500-chunk job', async (db, databaseUrl, schema) => {
  const token = await setUp(db);
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-cluster-'));
  const input = text(6_000);
  const source = await serve(input.body);
  const env = clusterEnv(databaseUrl, schema, home);
  const processes: Process[] = [];
  try {
    const servers = [await startProcess(['server', '--port', '0', '--json'], env), await startProcess(['server', '--port', '0', '--json'], env)];
    processes.push(...servers);
    const urls = servers.map((server) => server.info.url).join(',');
    for (let index = 0; index < 3; index++) processes.push(await startProcess(['worker', '--server', urls, '--token', token, '--slots', '2', '--json'], env));

    // A customer key is refused by the worker API, and a worker token by the customer API.
    assert.equal((await fetch(`${servers[0]!.info.url}/v1/worker/heartbeat`, { method: 'POST', headers: { authorization: KEY, 'content-type': 'application/json' }, body: '{}' })).status, 401);
    assert.equal((await fetch(`${servers[0]!.info.url}/v1/customer/jobs`, { headers: { authorization: token } })).status, 401);
    // A worker of our own, by hand: registered, then named in every call.
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-tessera-worker': 'by-hand' };
    const registered = await fetch(`${servers[0]!.info.url}/v1/worker/register`, { method: 'POST', headers, body: JSON.stringify({ id: 'by-hand', name: 'by hand', slots: 1, cpus: 1, memoryGb: 1 }) });
    assert.equal(registered.status, 200, await registered.clone().text());
    // A partitioner's completion lists every chunk: 30,000 of them (about 2.5 MiB of JSON) are
    // read, not refused as too large (the lease is not this worker's, so the answer is that).
    const outputs = Array.from({ length: 30_000 }, (_, index) => ({ name: `data_${index}.bin`, blobKey: `jobs/01M8J8Z5TPF9X1867FNJVDJ67A/a1/chunks/${index}-data_${index}.bin` }));
    const big = await fetch(`${servers[0]!.info.url}/v1/worker/tasks/1/complete`, { method: 'POST', headers, body: JSON.stringify({ leaseToken: 'none', outputs }) });
    assert.equal(big.status, 403);
    assert.match(((await big.json()) as { message: string }).message, /the lease on task 1 was not given to worker "by-hand"/);
    // Completions in one call: a forged lease refuses the call; a malformed batch is refused
    // whole, naming what is wrong.
    const completeMany = (body: unknown) => fetch(`${servers[0]!.info.url}/v1/worker/complete`, { method: 'POST', headers, body: JSON.stringify(body) });
    const forged = await completeMany({ completions: [{ taskId: 1, leaseToken: 'none', outputs: [] }, { taskId: 2, leaseToken: 'none', outputs: [], report: { logs: [], usage: null } }] });
    assert.equal(forged.status, 403);
    const tooMany = await completeMany({ completions: Array.from({ length: 1001 }, () => ({ taskId: 1, leaseToken: 'none' })) });
    assert.equal(tooMany.status, 400);
    assert.match(((await tooMany.json()) as { message: string }).message, /at most 1000/);
    const badShape = await completeMany({ completions: [{ taskId: 'one', leaseToken: 'none' }] });
    assert.equal(badShape.status, 400);
    assert.match(((await badShape.json()) as { message: string }).message, /completions\[0\]\.taskId "one" must be a number/);

    const jobId = await runWordCount(servers, source.url, 500);
    const job = await finishedJob(() => servers[0]!.info.url, jobId, 240_000);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    assert.equal(job.numChunks, 500);
    assert.deepEqual(await downloadedCounts(servers[0]!.info.url, jobId), input.counts);
    const owners = await db.query<{ owners: number }>(`SELECT count(DISTINCT lease_owner)::int AS owners FROM tasks WHERE kind = 'app'`);
    assert.ok(owners[0]!.owners >= 2, `the work was spread over ${owners[0]!.owners} workers`);
  } finally {
    for (const process of processes) await stopProcess(process);
    await source.close();
    rmSync(home, { recursive: true, force: true });
  }
}, { timeout: 300_000 });

forPostgres('chaos with default retries: workers killed every 2 s and a server killed once; the 2,000-chunk job completes with every chunk counted once', async (db, databaseUrl, schema) => {
  const token = await setUp(db);
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-chaos-'));
  const input = text(20_000);
  const source = await serve(input.body);
  const env = clusterEnv(databaseUrl, schema, home, { TESSERA_LEASE_SECONDS: '3' });
  const servers: Process[] = [];
  const workers: Process[] = [];
  let kills = 0;
  let serverKilled = false;
  let chaos: NodeJS.Timeout | undefined;
  // The kill-and-restart in progress, awaited before the processes are stopped at the end, so
  // no worker is started after its servers are gone.
  let inFlight: Promise<void> | undefined;
  try {
    servers.push(await startProcess(['server', '--port', '0', '--json'], env), await startProcess(['server', '--port', '0', '--json'], env));
    const urls = servers.map((server) => server.info.url).join(',');
    // Each worker also keeps a local queue of 10 leased tasks: a killed worker loses those too,
    // and they must run again like the ones it was running.
    const startWorker = () => startProcess(['worker', '--server', urls, '--token', token, '--slots', '2', '--prefetch', '10', '--json'], env);
    for (let index = 0; index < 3; index++) workers.push(await startWorker());
    // Default retries: a task lost with its killed worker costs it no attempt (lost_leases instead).
    const jobId = await runWordCount(servers, source.url, 2_000);
    const alive = () => (serverKilled ? servers[1]! : servers[0]!).info.url;
    // The chaos is aimed at the 2,000 app tasks: it starts once the partitioner (one task that
    // uploads 2,000 chunks, several seconds of work that a kill every 2 s would never let finish)
    // is done. Killed partitioners are covered by the single-server restart test.
    await waitFor('the job to be partitioned', async () => {
      const { job } = await api(alive(), 'GET', `/v1/customer/jobs/${jobId}`);
      return job?.numChunks > 0;
    }, 120_000);

    chaos = setInterval(() => {
      if (inFlight) return;
      inFlight = (async () => {
        // Only while the app tasks run: an assembler of 2,000 results needs longer than the 6 s a
        // worker lives under this fire, and would be killed forever.
        const { job: current } = await api(alive(), 'GET', `/v1/customer/jobs/${jobId}`).catch(() => ({ job: undefined }));
        if (current && current.state !== 'JOB_STATE_PARTITIONED') return;
        const index = kills % workers.length;
        await stopProcess(workers[index], 'SIGKILL');
        kills++;
        workers[index] = await startWorker();
        if (kills === 5 && !serverKilled) {
          serverKilled = true;
          await stopProcess(servers[0], 'SIGKILL');
        }
      })().finally(() => (inFlight = undefined));
    }, 2_000);

    // Generous: on the slowest two-core machine here a python process alone costs ~130 ms of
    // CPU, and 2,000 of them plus the re-executions and the restarted workers took 270–290 s.
    const job = await finishedJob(alive, jobId, 580_000);
    clearInterval(chaos);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    assert.equal(job.numChunks, 2_000);
    const [stats] = await db.query<{ tasks: number; succeeded: number; reexecutions: number; retried: number; lost: number }>(
      `SELECT count(*)::int AS tasks, count(*) FILTER (WHERE state = 'succeeded')::int AS succeeded,
              COALESCE(sum(attempt - 1), 0)::int AS reexecutions, count(*) FILTER (WHERE attempt > 1)::int AS retried,
              COALESCE(sum(lost_leases), 0)::int AS lost
         FROM tasks WHERE kind = 'app'`,
    );
    const counts = await downloadedCounts(alive(), jobId);
    const lost = Object.entries(input.counts).filter(([word, count]) => counts[word] !== count).length;
    console.log(`chaos: ${stats!.tasks} app tasks, ${kills} worker kills (SIGKILL) + 1 server kill, ${stats!.reexecutions} re-executions (${stats!.retried} tasks ran more than once; ${stats!.lost} leases lost with their workers, no attempt counted), ${2_000 - stats!.succeeded} lost, ${lost} words miscounted`);
    assert.ok(kills >= 3, `only ${kills} kills happened; the job finished too fast to test anything`);
    assert.equal(serverKilled, true);
    assert.equal(stats!.succeeded, 2_000);
    assert.deepEqual(counts, input.counts, 'each chunk counted exactly once');
  } catch (error) {
    // What the processes said is the first thing to read when chaos finds something.
    for (const [index, server] of servers.entries()) console.error(`--- server ${index} (exit ${server.child.exitCode ?? server.child.signalCode ?? 'running'}):\n${server.output().slice(-3000)}`);
    throw error;
  } finally {
    clearInterval(chaos);
    await inFlight?.catch(() => {});
    for (const process of [...workers, ...servers]) await stopProcess(process);
    await source.close();
    rmSync(home, { recursive: true, force: true });
  }
}, { timeout: 600_000 });

forPostgres('a worker with a local queue leases and completes in batches; stopped, it hands its queued tasks back at once', async (db, databaseUrl, schema) => {
  const token = await setUp(db);
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-prefetch-'));
  const input = text(3_000);
  const source = await serve(input.body);
  // A lease long enough that only a hand-back, never an expiry, can explain a task queued again.
  const env = clusterEnv(databaseUrl, schema, home, { TESSERA_LEASE_SECONDS: '120' });
  const processes: Process[] = [];
  try {
    const server = await startProcess(['server', '--port', '0', '--json'], env);
    processes.push(server);
    const base = server.info.url;
    const first = await startProcess(['worker', '--server', base, '--token', token, '--slots', '1', '--prefetch', '40', '--json'], env);
    processes.push(first);
    const jobId = await runWordCount([server], source.url, 120);
    const held = async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE job_id = $1 AND kind = 'app' AND state = 'leased'`, [jobId]))[0]!.n;
    // One slot, yet many leases: the local queue filled in one or two calls.
    await waitFor('the local queue to fill', async () => ((await held()) >= 20 ? true : undefined), 60_000);
    const [{ n: doneBefore }] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE job_id = $1 AND kind = 'app' AND state = 'succeeded'`, [jobId]) as [{ n: number }];
    assert.ok(doneBefore < 120, 'the job is still running when the worker stops');
    await stopProcess(first);
    // SIGTERM: the running task is stopped, the queued ones are handed back, none waits 120 s.
    await waitFor('every lease handed back', async () => ((await held()) === 0 ? true : undefined), 10_000);
    const back = await db.query<{ attempt: number }>(`SELECT attempt FROM tasks WHERE job_id = $1 AND kind = 'app' AND state = 'queued'`, [jobId]);
    assert.ok(back.length >= 15, `${back.length} tasks queued again`);
    assert.ok(back.filter((task) => task.attempt === 0).length >= back.length - 1, 'a task handed back unstarted has not used an attempt');

    processes.push(await startProcess(['worker', '--server', base, '--token', token, '--slots', '2', '--prefetch', '40', '--json'], env));
    const job = await finishedJob(() => base, jobId, 120_000);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    assert.deepEqual(await downloadedCounts(base, jobId), input.counts, 'every chunk counted once');
    const [{ n: rerun }] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE job_id = $1 AND attempt > 1`, [jobId]) as [{ n: number }];
    assert.ok(rerun <= 1, `${rerun} tasks ran more than once (at most the one running at the stop may)`);
  } finally {
    for (const process of processes) await stopProcess(process);
    await source.close();
    rmSync(home, { recursive: true, force: true });
  }
}, { timeout: 300_000 });

forPostgres('regions, priority, abort and unservable jobs with real worker agents', async (db, databaseUrl, schema) => {
  const token = await setUp(db);
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-regions-'));
  const env = clusterEnv(databaseUrl, schema, home, { TESSERA_LEASE_SECONDS: '3', TESSERA_UNSERVED_GRACE_SECONDS: '3' });
  const processes: Process[] = [];
  try {
    const server = await startProcess(['server', '--port', '0', '--json'], env);
    processes.push(server);
    const base = server.info.url;
    await installComponents(caller(base), [{ name: 'nap', type: 'app', entrypoint: 'main.py', code: 'import os, time\ntime.sleep(30)\n' }]);
    await installTemplate(caller(base), { id: 'nap', description: '', app: 'nap', partitioner: 'passthrough', assembler: 'passthrough' });
    const create = async (body: Record<string, unknown>) => (await api(base, 'POST', '/v1/customer/jobs', { templateId: 'word-count', ...body })).job.id as string;

    // Priority: queued while no worker runs, then one single-slot worker takes FAST before CHEAP.
    const cheap = await create({ priority: 'EXECUTION_PRIORITY_CHEAP' });
    const fast = await create({ priority: 'EXECUTION_PRIORITY_FAST' });
    await api(base, 'POST', `/v1/customer/jobs/${cheap}/run`);
    await api(base, 'POST', `/v1/customer/jobs/${fast}/run`);
    processes.push(await startProcess(['worker', '--server', base, '--token', token, '--slots', '1', '--region', 'eu', '--json'], env));
    for (const jobId of [cheap, fast]) assert.equal((await finishedJob(() => base, jobId, 60_000)).state, 'JOB_STATE_COMPLETE');
    const order = await db.query<{ job_id: string }>(`SELECT job_id FROM tasks WHERE kind = 'partition' ORDER BY started_at`);
    assert.deepEqual(order.map((row) => row.job_id), [fast, cheap], 'the FAST job was leased first');

    // Regions: an eu worker runs an eu job; a us-only job says plainly that nobody can run it.
    const inEu = await create({ regions: { whitelist: ['eu'] } });
    const inUs = await create({ regions: { whitelist: ['us'] } });
    const notEu = await create({ regions: { blacklist: ['eu'] } });
    for (const jobId of [inEu, inUs, notEu]) await api(base, 'POST', `/v1/customer/jobs/${jobId}/run`);
    assert.equal((await finishedJob(() => base, inEu, 60_000)).state, 'JOB_STATE_COMPLETE');
    for (const jobId of [inUs, notEu]) {
      const job = await finishedJob(() => base, jobId, 60_000);
      assert.equal(job.state, 'JOB_STATE_FAILED');
      assert.match(job.errorMessage, /no connected worker can run the partitioner: it needs a worker of the shared pool or of the account.s own pool with a region (in \[us\]|not in \[eu\])/);
    }

    // Abort mid-run: the remote worker stops the process and confirms; the job ends Cancelled.
    const napping = (await api(base, 'POST', '/v1/customer/jobs', { templateId: 'nap' })).job.id as string;
    await api(base, 'POST', `/v1/customer/jobs/${napping}/run`);
    await waitFor('the app to be running', async () => (await db.query(`SELECT 1 FROM tasks WHERE job_id = $1 AND kind = 'app' AND state = 'leased'`, [napping])).length > 0, 30_000);
    await api(base, 'POST', `/v1/customer/jobs/${napping}/abort`);
    const account = (await api(base, 'GET', '/v1/auth/user')).accountId;
    await waitFor('Cancelled', async () => (await api(base, 'GET', `/v2/accounts/${account}/jobs/ProcessFileJob/${napping}`)).status === 'Cancelled', 10_000);
    const [task] = await db.query<{ state: string }>(`SELECT state FROM tasks WHERE job_id = $1 AND kind = 'app'`, [napping]);
    assert.equal(task!.state, 'cancelled', 'the worker confirmed the process stopped');
  } finally {
    for (const process of processes) await stopProcess(process);
    rmSync(home, { recursive: true, force: true });
  }
}, { timeout: 300_000 });
