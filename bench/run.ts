import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../src/config/config.js';
import type { ApiResult } from './api.js';
import { apiBenchmark } from './api.js';
import type { LatencyResult } from './latency.js';
import { latencyBenchmark } from './latency.js';
import type { BenchmarkName, BenchOptions } from './lib/options.js';
import { HelpRequested, benchOptions, benchUsage } from './lib/options.js';
import { serverVersion } from './lib/postgres.js';
import { round, table } from './lib/stats.js';
import type { ScaleResult } from './scale.js';
import { scaleBenchmark } from './scale.js';
import type { EnqueueTimes, ThroughputResult, ThroughputRounds } from './throughput.js';
import { throughputBenchmark } from './throughput.js';
import type { XargsResult } from './xargs.js';
import { xargsBenchmark } from './xargs.js';

// npm run bench: every figure of issue 10 in one run on one machine, printed as tables and
// written to <out>/bench/results/latest.json and <out>/BENCHMARKS.md (see lib/options.ts).

interface Results {
  throughput?: ThroughputResult;
  throughputRounds?: ThroughputRounds;
  enqueueMs?: EnqueueTimes;
  latency?: LatencyResult;
  xargs?: XargsResult;
  scale?: ScaleResult;
  api?: ApiResult;
}

function packageVersion(name: string): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

async function machine(options: BenchOptions) {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    cpu: `${cpus[0]?.model ?? 'unknown'} × ${cpus.length}`,
    memoryGb: round(os.totalmem() / 1024 ** 3, 1),
    kernel: `${os.type()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((load) => round(load, 2)),
    node: process.version,
    postgres: await serverVersion(options.databaseUrl),
    tessera: `${JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version} (${gitCommit()})`,
    graphileWorker: packageVersion('graphile-worker'),
    pgBoss: packageVersion('pg-boss'),
    pglite: packageVersion('@electric-sql/pglite'),
    scale: options.scale,
    sizes: options.sizes,
    tesseraShape: `throughput: 1 server + ${options.tesseraWorkers} worker agent(s) × ${options.tesseraSlots} slots, local queue (--prefetch) ${options.tesseraPrefetch}, jobs of ≤ ${options.tesseraChunksPerJob} chunks; embedded (PGlite), and in one process on the PostgreSQL server: tessera up with ${options.tesseraSlots} in-process slots and the same local queue; scale: tessera up with ${options.tesseraSlots} slots`,
  };
}

const RUNNERS: Record<BenchmarkName, (options: BenchOptions, results: Results) => Promise<void>> = {
  throughput: async (options, results) => {
    const { rates, enqueueMs, rounds } = await throughputBenchmark(options);
    results.throughput = rates;
    results.enqueueMs = enqueueMs;
    results.throughputRounds = rounds;
  },
  latency: async (options, results) => void (results.latency = await latencyBenchmark(options)),
  xargs: async (options, results) => void (results.xargs = await xargsBenchmark(options)),
  scale: async (options, results) => void (results.scale = await scaleBenchmark(options)),
  api: async (options, results) => void (results.api = await apiBenchmark(options)),
};

/** One table per figure, in Markdown (which reads fine in a terminal too). */
function figures(results: Results, options: BenchOptions): string[] {
  const out: string[] = [];
  const { throughput, throughputRounds, enqueueMs, latency, xargs, scale, api } = results;
  if (throughput) {
    const enqueue = (system: keyof EnqueueTimes) => enqueueMs?.[system] ?? '-';
    const row = (label: string, system: keyof ThroughputResult, enqueued: string | number) => [
      label,
      throughput[system],
      system === 'tessera_pg' ? '1' : round(throughput.tessera_pg / throughput[system], 3),
      throughputRounds?.[system].join(', ') ?? '-',
      enqueued,
    ];
    const rounds = options.sizes.throughputRounds;
    out.push(`### 1. No-op task throughput (${options.sizes.throughputJobs} tasks each, tasks/s, the median of ${rounds} round${rounds === 1 ? '' : 's'})\n\n${table(['system', 'tasks/s', 'Tessera (PostgreSQL) ÷ it', 'each round, tasks/s', 'enqueueing them, ms (before the clock)'], [
      row('Tessera, PostgreSQL server, worker agents', 'tessera_pg', enqueue('tessera_pg')),
      row('graphile-worker, fastest settings', 'graphile_worker', enqueue('graphile_worker')),
      row('graphile-worker, defaults', 'graphile_worker_default', enqueue('graphile_worker_default')),
      row('pg-boss, 10 work() × batchSize 100', 'pg_boss', enqueue('pg_boss')),
      row('Tessera embedded (PGlite)', 'tessera_pglite', '-'),
      row('Tessera in one process, PostgreSQL server (tessera up; not a goal)', 'tessera_pg_in_process', '-'),
    ])}`);
  }
  if (latency) {
    out.push(`### 2. Enqueue → start latency, idle system (${options.sizes.latencySamples} samples, ms)\n\n${table(['system', 'p50', 'p95', 'p99'], [
      ['Tessera', latency.latency_ms.p50, latency.latency_ms.p95, latency.latency_ms.p99],
      ['graphile-worker (defaults)', latency.latency_ms_graphile_worker.p50, latency.latency_ms_graphile_worker.p95, latency.latency_ms_graphile_worker.p99],
    ])}`);
  }
  if (xargs) {
    out.push(`### 3. Process-task overhead (${options.sizes.xargsChunks} chunks, python3 burning ${options.sizes.burnMs} ms CPU each)\n\n${table(['runner', 'seconds', 'ratio'], [
      ['xargs -P2', xargs.xargs_seconds, 1],
      ['Tessera (server + 1 worker agent × 2 slots), create → COMPLETE (database clock)', xargs.tessera_seconds, xargs.overhead_vs_xargs],
      ['the same, every python process started from scratch (TESSERA_PYTHON_FORKSERVER=false)', xargs.tessera_cold_seconds, xargs.overhead_vs_xargs_cold],
      ['the same, tasks not confined (TESSERA_SANDBOX=off; not the default)', xargs.tessera_unconfined_seconds, xargs.overhead_vs_xargs_unconfined],
    ])}\n\nIn an image: ${'skipped' in xargs.containers ? `not run (${xargs.containers.skipped})` : `${xargs.containers.chunks} chunks, ${xargs.containers.image}\n\n${table(['runner', 'seconds', 'ratio'], [
      ['xargs -P2, a podman run per chunk', xargs.containers.xargs_podman_seconds, 1],
      ['Tessera, the app naming the image (podman per task)', xargs.containers.tessera_seconds, xargs.containers.overhead_vs_xargs_podman],
    ])}`}`);
  }
  if (scale) {
    out.push(`### 4. Scale: one noop job, create → COMPLETE (tessera up on the PostgreSQL server)\n\n${table(['chunks', 'seconds', 'chunks/s', 'server peak RSS (MB)'], [
      [scale.small.chunks, scale.small.seconds, round(scale.small.chunks / scale.small.seconds, 0), scale.small.serverPeakRssMb],
      [scale.large.chunks, scale.large.seconds, round(scale.large.chunks / scale.large.seconds, 0), scale.large.serverPeakRssMb],
    ])}\n\nRSS ratio (large ÷ small): ${scale.rss_ratio_100k_vs_10k}`);
  }
  if (api) {
    out.push(`### 5. GET /v1/customer/jobs/{jobId} at a fixed ${options.sizes.apiRate} req/s for ${options.sizes.apiSeconds} s (ms)\n\n${table(['driver', 'achieved req/s', 'p50', 'p99'], [
      [`open loop, the first ${api.open_loop_cold_start.seconds} s of load on the fresh server (not counted)`, api.open_loop_cold_start.rate, api.open_loop_cold_start.p50, api.open_loop_cold_start.p99],
      ['open loop (node, latency from when each request was due)', api.open_loop.rate, api.open_loop.p50, api.open_loop.p99],
      ...(api.wrk ? [['wrk 4.1, paced by Lua delay() (10 connections × 10 ms)', api.wrk.rate, api.wrk.p50, api.wrk.p99] as (string | number)[]] : [['wrk (not installed)', '-', '-', '-']]),
    ])}`);
  }
  return out;
}

function goals(results: Results): string {
  const rows: (string | number)[][] = [];
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const { throughput, latency, xargs, scale, api } = results;
  if (throughput) {
    rows.push(['Tessera ≥ 1× graphile-worker fastest', `${round(throughput.tessera_pg / throughput.graphile_worker, 3)}×`, verdict(throughput.tessera_pg >= throughput.graphile_worker)]);
    rows.push(['Tessera ≥ 10× graphile-worker defaults', `${round(throughput.tessera_pg / throughput.graphile_worker_default, 3)}×`, verdict(throughput.tessera_pg >= 10 * throughput.graphile_worker_default)]);
    rows.push(['Tessera ≥ 4× pg-boss', `${round(throughput.tessera_pg / throughput.pg_boss, 3)}×`, verdict(throughput.tessera_pg >= 4 * throughput.pg_boss)]);
    rows.push(['embedded ≥ 10,000 tasks/s', `${throughput.tessera_pglite}/s`, verdict(throughput.tessera_pglite >= 10_000)]);
  }
  if (latency) {
    rows.push(['latency p50 ≤ 3 ms', `${latency.latency_ms.p50} ms`, verdict(latency.latency_ms.p50 <= 3)]);
    rows.push(['latency p99 ≤ 10 ms', `${latency.latency_ms.p99} ms`, verdict(latency.latency_ms.p99 <= 10)]);
  }
  if (xargs) rows.push(['≤ 1.15× xargs -P2', `${xargs.overhead_vs_xargs}×`, verdict(xargs.overhead_vs_xargs <= 1.15)]);
  if (scale) rows.push(['RSS large ≤ 1.5× RSS small', `${scale.rss_ratio_100k_vs_10k}×`, verdict(scale.rss_ratio_100k_vs_10k <= 1.5)]);
  if (api) rows.push(['GET job p99 ≤ 10 ms', `${api.api_get_job_p99_ms} ms`, verdict(api.api_get_job_p99_ms <= 10)]);
  return `### Goals (issue 10)\n\n${table(['goal', 'measured', ''], rows)}`;
}

/** The keys issue 10 asks for, at the top level; the details under `details`. */
function summary(results: Results, about: Awaited<ReturnType<typeof machine>>) {
  return {
    ...(results.throughput ? { throughput: results.throughput } : {}),
    ...(results.latency ? { latency_ms: results.latency.latency_ms, latency_ms_graphile_worker: results.latency.latency_ms_graphile_worker } : {}),
    ...(results.xargs ? { overhead_vs_xargs: results.xargs.overhead_vs_xargs } : {}),
    ...(results.scale ? { rss_ratio_100k_vs_10k: results.scale.rss_ratio_100k_vs_10k } : {}),
    ...(results.api ? { api_get_job_p99_ms: results.api.api_get_job_p99_ms } : {}),
    details: { throughput_rounds: results.throughputRounds, enqueue_ms: results.enqueueMs, xargs: results.xargs, scale: results.scale, api: results.api },
    machine: about,
  };
}

function markdown(about: Awaited<ReturnType<typeof machine>>, sections: string[], notes: string): string {
  return [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` (bench/run.ts) on ${about.date}${about.scale === 'smoke' ? ' at **smoke sizes** (not meaningful as figures)' : ''}.`,
    '',
    `- Machine: ${about.cpu}, ${about.memoryGb} GB, ${about.kernel}; load average at start ${about.loadAverageAtStart.join(' / ')}`,
    `- Node ${about.node}, PostgreSQL ${about.postgres}, Tessera ${about.tessera}, graphile-worker ${about.graphileWorker}, pg-boss ${about.pgBoss}, PGlite ${about.pglite}`,
    `- Tessera: ${about.tesseraShape}; sizes: \`${JSON.stringify(about.sizes)}\``,
    '',
    ...sections.flatMap((section) => [section, '']),
    notes,
  ].join('\n');
}

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = benchOptions();
  } catch (error) {
    if (error instanceof HelpRequested) {
      process.stdout.write(`${benchUsage()}\n`);
      return;
    }
    // A bad flag or variable: its message says which, and nothing has run or been written.
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const about = await machine(options);
  const results: Results = {};
  for (const name of options.only) {
    const started = performance.now();
    process.stderr.write(`bench: ${name}…\n`);
    await RUNNERS[name](options, results);
    process.stderr.write(`bench: ${name} took ${round((performance.now() - started) / 1000, 1)} s\n`);
  }
  const sections = [...figures(results, options), goals(results)];
  for (const section of sections) process.stdout.write(`${section}\n\n`);
  const resultsDir = path.join(options.outDir, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(path.join(resultsDir, 'latest.json'), `${JSON.stringify(summary(results, about), null, 2)}\n`);
  const notesFile = path.join(packageRoot(), 'bench', 'NOTES.md');
  let notes = '';
  try {
    notes = readFileSync(notesFile, 'utf8');
  } catch {
    // No notes: the figures stand alone.
  }
  writeFileSync(path.join(options.outDir, 'BENCHMARKS.md'), markdown(about, sections, notes));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
