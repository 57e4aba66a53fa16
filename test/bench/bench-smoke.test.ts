import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/config/config.js';
import { ENGINES } from '../helpers/db.js';

// Every benchmark of `npm run bench` at tiny sizes, so the harness never rots: the run must end
// cleanly and write every figure issue 10 asks for as a finite number. The figures themselves
// mean nothing at these sizes; nothing here compares them with the goals.

const postgres = ENGINES.find((engine) => engine.name === 'postgres')!;

const KEYS = [
  'throughput.tessera_pg',
  'throughput.graphile_worker',
  'throughput.graphile_worker_default',
  'throughput.pg_boss',
  'throughput.tessera_pglite',
  'throughput.tessera_pg_in_process',
  'latency_ms.p50',
  'latency_ms.p95',
  'latency_ms.p99',
  'latency_ms_graphile_worker.p50',
  'latency_ms_graphile_worker.p95',
  'latency_ms_graphile_worker.p99',
  'overhead_vs_xargs',
  'rss_ratio_100k_vs_10k',
  'api_get_job_p99_ms',
];

test('npm run bench at smoke sizes writes every figure as a finite number', { timeout: 120_000, ...(postgres.skipReason ? { skip: postgres.skipReason } : {}) }, async () => {
  if (postgres.failReason) assert.fail(postgres.failReason);
  const out = mkdtempSync(path.join(tmpdir(), 'tessera-bench-smoke-'));
  try {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [path.join(packageRoot(), 'dist', 'bench', 'run.js'), '--scale', 'smoke', '--out', out], {
        env: { ...process.env, BENCH_DATABASE_URL: process.env.TESSERA_TEST_DATABASE_URL },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-20_000)));
      child.once('exit', (code) => resolve({ code, stderr }));
    });
    assert.equal(code, 0, stderr);
    const results = JSON.parse(readFileSync(path.join(out, 'bench', 'results', 'latest.json'), 'utf8'));
    for (const key of KEYS) {
      const value = key.split('.').reduce((object, part) => object?.[part], results);
      assert.ok(typeof value === 'number' && Number.isFinite(value) && value > 0, `${key} is ${JSON.stringify(value)}`);
    }
    // Every round's figure is kept beside the median (one round at smoke sizes).
    for (const [system, rounds] of Object.entries(results.details.throughput_rounds)) assert.deepEqual(rounds, [results.throughput[system]], system);
    const report = readFileSync(path.join(out, 'BENCHMARKS.md'), 'utf8');
    assert.match(report, /### 1\. No-op task throughput[\s\S]*### 5\. GET/);
    // The fresh server's first seconds are shown on their own row, not hidden by the warm-up.
    assert.match(report, /\| open loop, the first 1 s of load on the fresh server \(not counted\) +\| \d+ +\| [\d.]+ +\| [\d.]+ +\|/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
