import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import PgBoss from 'pg-boss';
import type { BenchOptions } from './lib/options.js';
import { dropSchema, schemaName } from './lib/postgres.js';
import { quantile, round, waitFor } from './lib/stats.js';
import { BIG_JOB_LEASE_SECONDS, between, completedJob, runJob, startCluster, startEmbedded } from './lib/tessera.js';

// Figure 1: no-op tasks per second, the whole path (enqueue → lease → run → complete), counted
// when the database says they are done. Every system gets the same number of tasks on the same
// server, each in its own fresh schema; the clock starts when the tasks are in the queue.

export interface ThroughputResult {
  tessera_pg: number;
  graphile_worker: number;
  graphile_worker_default: number;
  pg_boss: number;
  tessera_pglite: number;
  /**
   * Not a goal: `tessera up` on the same PostgreSQL server (API, scheduler and the same slots in
   * one process), the tasks leased and completed with no HTTP between worker and server. Beside
   * tessera_pg it shows what the worker protocol's hop costs, in the same run.
   */
  tessera_pg_in_process: number;
}

/**
 * How long each system took to put its tasks in the queue, which none of the figures above
 * includes: the peers' inserts before their clocks start, Tessera's fan-out (the first app task's
 * row → PARTITIONED, stamped once every task is queued) before its own. Embedded: not measured
 * (its database is inside the `tessera up` process).
 */
export type EnqueueTimes = Record<'tessera_pg' | 'graphile_worker' | 'graphile_worker_default' | 'pg_boss', number>;

interface Measured {
  tasksPerSecond: number;
  enqueueMs: number;
}

/** Generous: the slowest system measured does a few hundred tasks a second. */
function deadlineMs(tasks: number): number {
  return 120_000 + tasks * 20;
}

/**
 * Tessera: noop jobs of at most `chunksPerJob` chunks (by default one job of all `tasks`), one
 * after the other. A job's tasks are queued in the transaction that records PARTITIONED, and
 * TASKS_COMPLETED is recorded in the transaction of its last completion, so those two timestamps
 * bracket exactly the queue's work; the partition (uploading every chunk) falls outside, as the
 * peers' inserts do. Workers keep a local queue (`--prefetch`, BENCH_TESSERA_PREFETCH), the
 * counterpart of graphile-worker's localQueue; leases, heartbeats and fencing are as always.
 */
export async function tesseraThroughput(options: BenchOptions, store: 'pg' | 'pglite' | 'pg-in-process', tasks = options.sizes.throughputJobs): Promise<Measured> {
  const tessera = store === 'pg'
    ? await startCluster(options.databaseUrl, { workers: options.tesseraWorkers, slots: options.tesseraSlots, leaseSeconds: BIG_JOB_LEASE_SECONDS, prefetch: options.tesseraPrefetch })
    : await startEmbedded(options.tesseraSlots, BIG_JOB_LEASE_SECONDS, store === 'pg-in-process' ? options.databaseUrl : undefined, options.tesseraPrefetch);
  try {
    let queueMs = 0;
    let enqueueMs = 0;
    for (let first = 0; first < tasks; first += options.tesseraChunksPerJob) {
      const chunks = Math.min(options.tesseraChunksPerJob, tasks - first);
      const jobId = await runJob(tessera.url, 'noop', { partitioner: { chunks } }, { jobTimeout: Math.ceil(deadlineMs(chunks) / 1000) });
      const job = await completedJob(tessera.url, jobId, deadlineMs(chunks), 200);
      // A floor of 1 ms: a tiny smoke-sized job can finish within one timestamp tick.
      queueMs += Math.max(1, between(job, 'PARTITIONED', 'TASKS_COMPLETED'));
      if (tessera.db) {
        const [first] = await tessera.db.query<{ at: Date }>(`SELECT min(created_at) AS at FROM tasks WHERE job_id = $1 AND kind = 'app'`, [jobId]);
        enqueueMs += Date.parse(job.stateTimestamps.JOB_STATE_PARTITIONED) - first!.at.getTime();
      }
    }
    return { tasksPerSecond: round(tasks / (queueMs / 1000), 0), enqueueMs: round(enqueueMs, 0) };
  } finally {
    await tessera.stop();
  }
}

async function countRows(databaseUrl: string, sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<{ count: number }>(sql)).rows[0]!.count;
  } finally {
    await client.end();
  }
}

/**
 * graphile-worker: `tasks` jobs added first, then a worker started; done when its jobs table is
 * empty (it deletes a job when it completes it). "fastest" is the setting: a local queue
 * of 1,000 and completions batched with no delay, 24 jobs at once.
 */
export async function graphileThroughput(options: BenchOptions, fastest: boolean, tasks = options.sizes.throughputJobs): Promise<Measured> {
  const schema = schemaName(fastest ? 'gw_fast' : 'gw_default');
  const connectionString = options.databaseUrl;
  const utils = await makeWorkerUtils({ connectionString, schema });
  try {
    await utils.migrate();
    const enqueueStarted = performance.now();
    for (let first = 0; first < tasks; first += 1000) {
      await utils.addJobs(Array.from({ length: Math.min(1000, tasks - first) }, (_, index) => ({ identifier: 'noop', payload: { index: first + index } })));
    }
    const started = performance.now();
    const enqueueMs = round(started - enqueueStarted, 0);
    const runner = await run({
      connectionString,
      schema,
      noHandleSignals: true,
      taskList: { noop: async () => {} },
      ...(fastest ? { concurrency: 24, preset: { worker: { localQueue: { size: 1000 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } } : {}),
      logger: quietLogger(),
    });
    try {
      await waitFor('graphile-worker to finish its jobs', async () => ((await countRows(connectionString, `SELECT count(*)::int AS count FROM ${schema}._private_jobs`)) === 0 ? true : undefined), deadlineMs(tasks), 10);
      return { tasksPerSecond: round(tasks / ((performance.now() - started) / 1000), 0), enqueueMs };
    } finally {
      await runner.stop();
    }
  } finally {
    await utils.release();
    await dropSchema(connectionString, schema);
  }
}

/** graphile-worker's logger, keeping only errors (its info lines would drown the tables). */
export function quietLogger(): Logger {
  return new Logger(() => (level, message) => {
    if (level === 'error') console.error(`graphile-worker: ${message}`);
  });
}

/** pg-boss: `tasks` jobs inserted first, then 10 work() loops fetching 100 at a time; done when all are completed. */
export async function pgBossThroughput(options: BenchOptions, tasks = options.sizes.throughputJobs): Promise<Measured> {
  const schema = schemaName('pgboss');
  const boss = new PgBoss({ connectionString: options.databaseUrl, schema, supervise: false, schedule: false });
  boss.on('error', (error) => console.error(`pg-boss: ${error.message}`));
  await boss.start();
  try {
    await boss.createQueue('noop');
    const enqueueStarted = performance.now();
    for (let first = 0; first < tasks; first += 1000) {
      await boss.insert(Array.from({ length: Math.min(1000, tasks - first) }, (_, index) => ({ name: 'noop', data: { index: first + index } })));
    }
    const started = performance.now();
    const enqueueMs = round(started - enqueueStarted, 0);
    for (let loop = 0; loop < 10; loop++) await boss.work('noop', { batchSize: 100, pollingIntervalSeconds: 0.5 }, async () => {});
    await waitFor('pg-boss to complete its jobs', async () => ((await countRows(options.databaseUrl, `SELECT count(*)::int AS count FROM ${schema}.job WHERE state = 'completed'`)) >= tasks ? true : undefined), deadlineMs(tasks), 10);
    return { tasksPerSecond: round(tasks / ((performance.now() - started) / 1000), 0), enqueueMs };
  } finally {
    await boss.stop({ graceful: false, wait: true });
    await dropSchema(options.databaseUrl, schema);
  }
}

/** Each system's figure in every round, in the order they ran. */
export type ThroughputRounds = Record<keyof ThroughputResult, number[]>;

/**
 * Every system once a round, `throughputRounds` rounds, the systems in the same order each
 * round; each figure is the median of its rounds. One run each swung the ratio to graphile-worker
 * between 0.615 and 0.709 within an hour here, and the embedded figure once to half its usual
 * value while another program started: alternating rounds see the same minutes of the machine.
 */
export async function throughputBenchmark(options: BenchOptions): Promise<{ rates: ThroughputResult; enqueueMs: EnqueueTimes; rounds: ThroughputRounds }> {
  const systems: [keyof ThroughputResult, () => Promise<Measured>][] = [
    ['tessera_pg', () => tesseraThroughput(options, 'pg')],
    ['graphile_worker', () => graphileThroughput(options, true)],
    ['graphile_worker_default', () => graphileThroughput(options, false)],
    ['pg_boss', () => pgBossThroughput(options)],
    ['tessera_pglite', () => tesseraThroughput(options, 'pglite')],
    ['tessera_pg_in_process', () => tesseraThroughput(options, 'pg-in-process')],
  ];
  const rounds = Object.fromEntries(systems.map(([name]) => [name, []])) as unknown as ThroughputRounds;
  const enqueued: Record<keyof EnqueueTimes, number[]> = { tessera_pg: [], graphile_worker: [], graphile_worker_default: [], pg_boss: [] };
  for (let round = 0; round < options.sizes.throughputRounds; round++) {
    for (const [name, measure] of systems) {
      const measured = await measure();
      rounds[name].push(measured.tasksPerSecond);
      if (name in enqueued) enqueued[name as keyof EnqueueTimes].push(measured.enqueueMs);
    }
  }
  const median = (values: number[]) => round(quantile(values, 0.5), 0);
  return {
    rates: Object.fromEntries(systems.map(([name]) => [name, median(rounds[name])])) as unknown as ThroughputResult,
    enqueueMs: Object.fromEntries(Object.entries(enqueued).map(([name, values]) => [name, median(values)])) as EnqueueTimes,
    rounds,
  };
}
