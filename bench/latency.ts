import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import type { BenchOptions } from './lib/options.js';
import { dropSchema, schemaName } from './lib/postgres.js';
import type { Percentiles } from './lib/stats.js';
import { percentiles, waitFor } from './lib/stats.js';
import { completedJob, runJob, startCluster } from './lib/tessera.js';

// Figure 2: enqueue → start on an idle system, one task at a time, so nothing queues behind
// anything: what a lone task waits before a worker begins it.

export interface LatencyResult {
  latency_ms: Percentiles;
  latency_ms_graphile_worker: Percentiles;
}

/** Samples thrown away first: connection set-up, JIT warm-up. */
const WARM_UP = 3;

/**
 * Tessera: one-chunk noop jobs, one after the other, through a server and one worker agent.
 * Enqueue is the task's created_at (when its row was written, in the transaction that queues it;
 * the job's transition to PARTITIONED and the commit follow) and start its started_at (the lease
 * statement), both on the database's clock: the worker gets the lease one HTTP response later.
 */
export async function tesseraLatency(options: BenchOptions, samples = options.sizes.latencySamples): Promise<Percentiles> {
  const tessera = await startCluster(options.databaseUrl, { workers: 1, slots: 2 });
  try {
    const waits: number[] = [];
    for (let sample = 0; sample < samples + WARM_UP; sample++) {
      const jobId = await runJob(tessera.url, 'noop', { partitioner: { chunks: 1 } });
      await completedJob(tessera.url, jobId, 60_000, 10);
      const [row] = await tessera.db!.query<{ waited: number }>(
        `SELECT EXTRACT(EPOCH FROM started_at - created_at)::float8 * 1000 AS waited FROM tasks WHERE job_id = $1 AND kind = 'app'`,
        [jobId],
      );
      if (sample >= WARM_UP) waits.push(row!.waited);
    }
    return percentiles(waits);
  } finally {
    await tessera.stop();
  }
}

/**
 * graphile-worker with its defaults (LISTEN/NOTIFY wake-ups): addJob, then the time until the
 * task function is called, on this process's monotonic clock.
 */
export async function graphileLatency(options: BenchOptions, samples = options.sizes.latencySamples): Promise<Percentiles> {
  const schema = schemaName('gw_latency');
  const connectionString = options.databaseUrl;
  const utils = await makeWorkerUtils({ connectionString, schema });
  const enqueuedAt = new Map<number, number>();
  const waits = new Map<number, number>();
  const logger = new Logger(() => (level, message) => {
    if (level === 'error') console.error(`graphile-worker: ${message}`);
  });
  try {
    await utils.migrate();
    const runner = await run({
      connectionString,
      schema,
      noHandleSignals: true,
      logger,
      taskList: {
        noop: async (payload) => {
          const index = (payload as { index: number }).index;
          waits.set(index, performance.now() - enqueuedAt.get(index)!);
        },
      },
    });
    try {
      for (let index = 0; index < samples + WARM_UP; index++) {
        enqueuedAt.set(index, performance.now());
        await utils.addJob('noop', { index });
        await waitFor(`graphile-worker to start job ${index}`, async () => (waits.has(index) ? true : undefined), 60_000, 1);
      }
    } finally {
      await runner.stop();
    }
    return percentiles([...waits.entries()].filter(([index]) => index >= WARM_UP).map(([, waited]) => waited));
  } finally {
    await utils.release();
    await dropSchema(connectionString, schema);
  }
}

export async function latencyBenchmark(options: BenchOptions): Promise<LatencyResult> {
  return { latency_ms: await tesseraLatency(options), latency_ms_graphile_worker: await graphileLatency(options) };
}
