import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BenchOptions } from './lib/options.js';
import { quantile, round } from './lib/stats.js';
import { BENCH_KEY, completedJob, runJob, startCluster } from './lib/tessera.js';

// Figure 5: GET /v1/customer/jobs/{jobId} at a fixed rate, p99.
//
// Debian's wrk (4.1) has no fixed-rate mode (-R is wrk2's). So two drivers run, one after the other:
//   - open loop (the headline when it is the worse): a node generator that sends request i at
//     start + i/rate whatever the earlier ones are doing, and measures each from the moment it
//     was due (wrk2's correction for coordinated omission: a stall counts for every request it delays);
//   - wrk, paced: 10 connections each waiting 10 ms after every response (wrk's Lua delay()),
//     which holds about the rate while answers are fast but does not send during a stall.
// api_get_job_p99_ms is the larger of the two p99s, both measured on a warm server: the first
// seconds of load on a fresh server process are a figure of their own (open_loop_cold_start), run
// first and shown beside them. In those seconds V8 is still compiling the request path: a CPU
// profile of the server showed it busy 2× as long per request for the first 2–3 s of load, and a
// 1 s warm-up left 1–2 s of that in the counted run (p99 45–700 ms, against 3–6 ms after 5 s).

export interface ApiResult {
  api_get_job_p99_ms: number;
  open_loop: { p50: number; p99: number; rate: number };
  /** The first seconds of load on the freshly started server (not in api_get_job_p99_ms). */
  open_loop_cold_start: { p50: number; p99: number; rate: number; seconds: number };
  wrk: { p50: number; p99: number; rate: number } | null;
}

/** The first seconds of load on a fresh server: measured and shown, then the counted runs. */
const COLD_START_SECONDS = 5;

async function openLoop(url: string, rate: number, seconds: number): Promise<{ p50: number; p99: number; rate: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const target = new URL(url);
  const latencies: number[] = [];
  let failures = 0;
  const total = Math.round(rate * seconds);
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let index = 0; index < total; index++) {
    const due = started + (index * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(new Promise<void>((resolve) => {
      const request = http.request({ agent, host: target.hostname, port: target.port, path: target.pathname, headers: { authorization: BENCH_KEY } }, (response) => {
        response.resume();
        response.once('end', () => {
          if (response.statusCode === 200) latencies.push(performance.now() - due);
          else failures++;
          resolve();
        });
      });
      request.once('error', () => {
        failures++;
        resolve();
      });
      request.end();
    }));
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  if (failures > 0) throw new Error(`${failures} of ${total} GET job requests failed`);
  return { p50: round(quantile(latencies, 0.5), 3), p99: round(quantile(latencies, 0.99), 3), rate: round(total / elapsed, 0) };
}

/** "1.23ms", "850.00us", "1.01s" in milliseconds. */
function wrkMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!match) throw new Error(`cannot read the wrk duration ${JSON.stringify(text)}`);
  return Number(match[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[match[2] as 'us' | 'ms' | 's' | 'm'];
}

async function pacedWrk(url: string, rate: number, seconds: number): Promise<{ p50: number; p99: number; rate: number } | null> {
  if (spawnSync('wrk', ['--version']).error) return null;
  const connections = 10;
  const scratch = mkdtempSync(path.join(tmpdir(), 'tessera-bench-wrk-'));
  try {
    const script = path.join(scratch, 'pace.lua');
    writeFileSync(script, `function delay()\n  return ${(connections * 1000) / rate}\nend\n`);
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, '-H', `authorization: ${BENCH_KEY}`, url], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (chunk) => (text += chunk));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`))));
    });
    const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
    if (non2xx) throw new Error(`wrk saw ${non2xx[1]} failed responses:\n${output}`);
    const p50 = /^\s+50%\s+(\S+)$/m.exec(output);
    const p99 = /^\s+99%\s+(\S+)$/m.exec(output);
    const achieved = /^Requests\/sec:\s+([\d.]+)$/m.exec(output);
    if (!p50 || !p99 || !achieved) throw new Error(`cannot read wrk's report:\n${output}`);
    return { p50: round(wrkMs(p50[1]!), 3), p99: round(wrkMs(p99[1]!), 3), rate: round(Number(achieved[1]), 0) };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export async function apiBenchmark(options: BenchOptions): Promise<ApiResult> {
  const { apiRate: rate, apiSeconds: seconds } = options.sizes;
  const tessera = await startCluster(options.databaseUrl, { workers: 1, slots: 2 });
  try {
    const jobId = await runJob(tessera.url, 'noop', { partitioner: { chunks: 10 } });
    await completedJob(tessera.url, jobId, 60_000);
    const url = `${tessera.url}/v1/customer/jobs/${jobId}`;
    const coldSeconds = Math.min(COLD_START_SECONDS, seconds);
    const cold = await openLoop(url, rate, coldSeconds);
    const open = await openLoop(url, rate, seconds);
    const wrk = await pacedWrk(url, rate, seconds);
    return { api_get_job_p99_ms: Math.max(open.p99, wrk?.p99 ?? 0), open_loop: open, open_loop_cold_start: { ...cold, seconds: coldSeconds }, wrk };
  } finally {
    await tessera.stop();
  }
}
