import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../src/config/config.js';
import { createKey, ensureFirstAccount } from '../../src/engine/accounts.js';
import type { Db } from '../../src/store/db.js';
import { openDb } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { dropSchema, schemaName } from './postgres.js';
import { waitFor } from './stats.js';

// Tessera as the benchmarks run it: real `tessera server` and `tessera worker` processes on a
// fresh schema of the PostgreSQL server, or `tessera up` (embedded PGlite, in-process slots) in a
// fresh home folder; jobs created and watched through the public API only.

const BIN = path.join(packageRoot(), 'bin', 'tessera.js');
export const BENCH_KEY = `tsk_bench_${randomBytes(12).toString('hex')}`;

export interface TesseraProcess {
  child: ChildProcess;
  info: Record<string, any>;
  output: () => string;
}

export async function startTesseraProcess(args: string[], env: Record<string, string>, nodeArgs: string[] = []): Promise<TesseraProcess> {
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TESSERA_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (chunk) => (output = (output + chunk).slice(-20_000)));
  const info = await new Promise<Record<string, any>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', (code, signal) => reject(new Error(`tessera ${args[0]} exited (${code ?? signal}): ${output}`)));
  });
  return { child, info, output: () => output };
}

async function stopProcess(running: TesseraProcess): Promise<void> {
  if (running.child.exitCode !== null || running.child.signalCode !== null) return;
  const exited = new Promise((resolve) => running.child.once('exit', resolve));
  running.child.kill('SIGTERM');
  await exited;
}

/** The peak resident set of a live process (VmHWM), in bytes. */
export function peakRssBytes(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export interface Tessera {
  url: string;
  server: TesseraProcess;
  /** The schema's database (server mode only), for timings the API does not show. */
  db: Db | undefined;
  stop(): Promise<void>;
}

export interface ClusterShape {
  workers: number;
  slots: number;
  /** Extra node flags for the server (e.g. --cpu-prof). */
  serverNodeArgs?: string[];
  /** Extra node flags for the worker agents. */
  workerNodeArgs?: string[];
  /** TESSERA_LEASE_SECONDS, when not the default 30 (see BIG_JOB_LEASE_SECONDS). */
  leaseSeconds?: number;
  /** The workers' local queue (--prefetch), when not the default (auto). */
  prefetch?: number | 'auto';
  /** More settings for every process (TESSERA_PYTHON_FORKSERVER=false, say). */
  env?: Record<string, string>;
}

/**
 * The lease of the jobs with tens of thousands of chunks. Their partition task uploads every
 * chunk over HTTP before it completes (20,000 took about a minute here), and with the default
 * 30 s lease it expired under a worker that was still uploading, three times, failing the job:
 * a limit of Tessera found by these benchmarks, noted in BENCHMARKS.md. App tasks still run under
 * leases and fencing; only how long a crashed worker's task waits before it runs elsewhere grows.
 */
export const BIG_JOB_LEASE_SECONDS = 600;

/** One `tessera server` and `workers` agents on a new schema, dropped again by stop(). */
export async function startCluster(databaseUrl: string, shape: ClusterShape): Promise<Tessera> {
  const schema = `bench_tessera_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const db = await openDb({ databaseUrl, schema, poolSize: 2 });
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-bench-'));
  const processes: TesseraProcess[] = [];
  const stop = async () => {
    for (const running of processes.reverse()) await stopProcess(running);
    rmSync(home, { recursive: true, force: true });
    try {
      await db.exec(`DROP SCHEMA ${schema} CASCADE`);
    } finally {
      await db.close();
    }
  };
  try {
    await migrate(db);
    await ensureFirstAccount(db, BENCH_KEY);
    const token = (await createKey(db, { scope: 'worker' })).apiKey;
    const env: Record<string, string> = { ...shape.env, DATABASE_URL: databaseUrl, TESSERA_DATABASE_SCHEMA: schema, TESSERA_HOME: home };
    if (shape.leaseSeconds) env.TESSERA_LEASE_SECONDS = String(shape.leaseSeconds);
    if (shape.prefetch !== undefined) env.TESSERA_WORKER_PREFETCH = String(shape.prefetch);
    const server = await startTesseraProcess(['server', '--port', '0', '--json'], env, shape.serverNodeArgs);
    processes.push(server);
    for (let index = 0; index < shape.workers; index++) {
      processes.push(await startTesseraProcess(['worker', '--server', server.info.url, '--token', token, '--slots', String(shape.slots), '--home', home, '--json'], env, shape.workerNodeArgs));
    }
    return { url: server.info.url, server, db, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * `tessera up`: the API, the scheduler and `slots` worker slots in one process, in a new home
 * folder; on embedded PGlite, or given `databaseUrl` on a new schema of that server.
 */
export async function startEmbedded(slots: number, leaseSeconds?: number, databaseUrl?: string, prefetch?: number): Promise<Tessera> {
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-bench-embedded-'));
  const schema = databaseUrl ? schemaName('tessera_up') : undefined;
  const cleanUp = async () => {
    rmSync(home, { recursive: true, force: true });
    if (databaseUrl && schema) await dropSchema(databaseUrl, schema);
  };
  try {
    const server = await startTesseraProcess(['up', '--port', '0', '--slots', String(slots), '--home', home, '--json'], {
      TESSERA_API_KEY: BENCH_KEY,
      ...(leaseSeconds ? { TESSERA_LEASE_SECONDS: String(leaseSeconds) } : {}),
      ...(prefetch ? { TESSERA_WORKER_PREFETCH: String(prefetch) } : {}),
      ...(databaseUrl && schema ? { DATABASE_URL: databaseUrl, TESSERA_DATABASE_SCHEMA: schema } : {}),
    });
    return {
      url: server.info.url,
      server,
      db: undefined,
      async stop() {
        await stopProcess(server);
        await cleanUp();
      },
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

export async function api(base: string, method: string, route: string, body?: unknown): Promise<any> {
  const response = await fetch(`${base}${route}`, { method, headers: { authorization: BENCH_KEY, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

/** Creates and runs a job of a template; returns its id. */
export async function runJob(base: string, templateId: string, params: Record<string, unknown>, config: Record<string, unknown> = {}): Promise<string> {
  const created = await api(base, 'POST', '/v1/customer/jobs', { templateId, params, config });
  await api(base, 'POST', `/v1/customer/jobs/${created.job.id}/run`);
  return created.job.id;
}

/** The job once it is COMPLETE; an error naming its message if it failed or took longer than `timeoutMs`. */
export async function completedJob(base: string, jobId: string, timeoutMs: number, everyMs = 50): Promise<any> {
  const job = await waitFor(`job ${jobId} to finish`, async () => {
    const { job } = await api(base, 'GET', `/v1/customer/jobs/${jobId}`);
    return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(job.state) ? job : undefined;
  }, timeoutMs, everyMs);
  if (job.state !== 'JOB_STATE_COMPLETE') throw new Error(`job ${jobId} failed: ${job.errorMessage}`);
  return job;
}

/** Milliseconds between two of a job's state timestamps (recorded by the database's transactions). */
export function between(job: any, from: string, to: string): number {
  const start = job.stateTimestamps[`JOB_STATE_${from}`];
  const end = job.stateTimestamps[`JOB_STATE_${to}`];
  if (!start || !end) throw new Error(`job ${job.id} has no ${!start ? from : to} timestamp: ${JSON.stringify(job.stateTimestamps)}`);
  return Date.parse(end) - Date.parse(start);
}
