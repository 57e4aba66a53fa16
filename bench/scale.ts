import type { BenchOptions } from './lib/options.js';
import { round } from './lib/stats.js';
import { BIG_JOB_LEASE_SECONDS, completedJob, peakRssBytes, runJob, startEmbedded } from './lib/tessera.js';

// Figure 4: one big noop job, end to end (create → COMPLETE as the client sees it), and the peak
// resident memory of the server process that ran it (VmHWM): each size on a fresh server, so the
// peak is that job's. The server is `tessera up` on the PostgreSQL server (API, scheduler and
// worker slots in one process), so the one process measured holds everything Tessera keeps in
// memory for the job.

export interface ScaleRun {
  chunks: number;
  seconds: number;
  serverPeakRssMb: number;
}

export interface ScaleResult {
  rss_ratio_100k_vs_10k: number;
  small: ScaleRun;
  large: ScaleRun;
}

export async function scaleRun(options: BenchOptions, chunks: number): Promise<ScaleRun> {
  const tessera = await startEmbedded(options.tesseraSlots, BIG_JOB_LEASE_SECONDS, options.databaseUrl);
  try {
    const started = performance.now();
    const jobId = await runJob(tessera.url, 'noop', { partitioner: { chunks } }, { jobTimeout: 3600 });
    await completedJob(tessera.url, jobId, 120_000 + chunks * 30, 200);
    const seconds = (performance.now() - started) / 1000;
    return { chunks, seconds: round(seconds, 2), serverPeakRssMb: round(peakRssBytes(tessera.server.child.pid!) / 1024 ** 2, 1) };
  } finally {
    await tessera.stop();
  }
}

export async function scaleBenchmark(options: BenchOptions): Promise<ScaleResult> {
  const small = await scaleRun(options, options.sizes.scaleSmall);
  const large = await scaleRun(options, options.sizes.scaleLarge);
  return { rss_ratio_100k_vs_10k: round(large.serverPeakRssMb / small.serverPeakRssMb, 3), small, large };
}
