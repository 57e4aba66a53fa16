import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { HelpRequested, benchOptions } from '../../bench/lib/options.js';
import { packageRoot } from '../../src/config/config.js';

// The bench's flags and BENCH_ variables: a wrong one is an error naming it, before anything runs
// or anything is written (a mistyped flag used to start the full run and replace the committed
// results).

test('the flags are read in both forms, with the sizes from the environment', () => {
  const options = benchOptions(['--scale', 'smoke', '--only=latency,api', '--out', '/tmp/bench-out'], { BENCH_LATENCY_SAMPLES: '7' });
  assert.equal(options.scale, 'smoke');
  assert.deepEqual(options.only, ['latency', 'api']);
  assert.equal(options.outDir, '/tmp/bench-out');
  assert.equal(options.sizes.latencySamples, 7);
  assert.equal(options.sizes.throughputJobs, 100);
  assert.equal(benchOptions([], {}).sizes.throughputJobs, 20_000);
});

test('an unknown, repeated or valueless flag, or an unknown BENCH_ variable, is refused by name', () => {
  const refused: [string[], Record<string, string>, RegExp][] = [
    [['--onyl', 'api'], {}, /unknown argument "--onyl": the bench takes --scale, --only, --out/],
    [['full'], {}, /unknown argument "full"/],
    [['--only'], {}, /--only needs a value/],
    [['--only', '--out', 'x'], {}, /--only needs a value/],
    [['--out=a', '--out', 'b'], {}, /--out is given twice \("a" and "b"\)/],
    [['--only', 'latency,speed'], {}, /--only "speed" is not a benchmark/],
    [[], { BENCH_THROUGHPUT_JOB: '5' }, /unknown environment variable BENCH_THROUGHPUT_JOB: the bench reads .*BENCH_THROUGHPUT_JOBS/],
    [[], { BENCH_API_RATE: '0' }, /BENCH_API_RATE="0" must be a whole number/],
  ];
  for (const [argv, env, message] of refused) assert.throws(() => benchOptions(argv, env), message, JSON.stringify([argv, env]));
  assert.throws(() => benchOptions(['--scale', 'smoke', '-h'], {}), HelpRequested);
});

test('the bench prints its usage for --help, and exits 2 on a bad flag without running', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [path.join(packageRoot(), 'dist', 'bench', 'run.js'), ...args], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH ?? '' } });
  const help = run(['--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: npm run bench -- \[--scale full\|smoke\]/);
  assert.equal(help.stderr, '');
  const bad = run(['--scale', 'smoke', '--onyl', 'api']);
  assert.equal(bad.status, 2);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /^bench: unknown argument "--onyl"/);
  assert.doesNotMatch(bad.stderr, /bench: throughput/);
});
