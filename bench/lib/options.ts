import { availableParallelism } from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../src/config/config.js';

// Everything a benchmark run can be told, read once from flags and the environment:
//   npm run bench                               the sizes of issue 10
//   npm run bench -- --scale smoke              tiny sizes (the smoke test uses these)
//   npm run bench -- --only latency,api         some benchmarks only
//   npm run bench -- --out /tmp/x               write latest.json and BENCHMARKS.md there
// BENCH_SCALE, BENCH_ONLY, BENCH_OUT do the same; BENCH_DATABASE_URL names the server
// (default TESSERA_TEST_DATABASE_URL, then postgres://postgres@127.0.0.1:5432/test); every size
// below can be set on its own (BENCH_THROUGHPUT_JOBS=5000).

export const BENCHMARKS = ['throughput', 'latency', 'xargs', 'scale', 'api'] as const;
export type BenchmarkName = (typeof BENCHMARKS)[number];

export interface Sizes {
  /** Jobs (tasks) per system in the throughput benchmark. */
  throughputJobs: number;
  /** Rounds of the throughput benchmark, every system once a round; each figure is its median. */
  throughputRounds: number;
  /** Enqueue → start samples per system, one at a time on an idle system. */
  latencySamples: number;
  /** Chunks of the python3 job compared with xargs -P2, and the CPU each burns. */
  xargsChunks: number;
  burnMs: number;
  /** Chunks of the same job run in a container image (a podman run each under xargs, against Tessera). */
  containerChunks: number;
  /** The two job sizes of the scale benchmark. */
  scaleSmall: number;
  scaleLarge: number;
  /** How long, and at what fixed rate, GET job is driven. */
  apiSeconds: number;
  apiRate: number;
}

const SCALES: Record<'full' | 'smoke', Sizes> = {
  full: { throughputJobs: 20_000, throughputRounds: 3, latencySamples: 300, xargsChunks: 1_000, burnMs: 20, containerChunks: 100, scaleSmall: 10_000, scaleLarge: 100_000, apiSeconds: 20, apiRate: 1_000 },
  smoke: { throughputJobs: 100, throughputRounds: 1, latencySamples: 5, xargsChunks: 8, burnMs: 20, containerChunks: 2, scaleSmall: 20, scaleLarge: 60, apiSeconds: 1, apiRate: 200 },
};

export interface BenchOptions {
  scale: 'full' | 'smoke';
  sizes: Sizes;
  only: BenchmarkName[];
  outDir: string;
  databaseUrl: string;
  /** Tessera's worker agents and slots per agent in the throughput and scale benchmarks. */
  tesseraWorkers: number;
  tesseraSlots: number;
  /** The most chunks one job of the throughput benchmark has (see throughput.ts). */
  tesseraChunksPerJob: number;
  /** Tasks each worker leases ahead of its free slots in the throughput benchmark (--prefetch). */
  tesseraPrefetch: number;
  /** The local image of the container rows of the process benchmark (BENCH_IMAGE, else TESSERA_TEST_IMAGE); none skips them. */
  image: string | undefined;
}

/** The flags `npm run bench --` takes, each with a value (`--only api` or `--only=api`). */
const FLAGS = ['scale', 'only', 'out'] as const;
type Flag = (typeof FLAGS)[number];

export function benchUsage(): string {
  return `usage: npm run bench -- [--scale full|smoke] [--only ${BENCHMARKS.join(',')}] [--out DIR]

  --scale   full: the sizes of issue 10 (default); smoke: tiny sizes, for checking the harness
  --only    a comma-separated list of benchmarks to run (default: all)
  --out     the folder written: DIR/BENCHMARKS.md and DIR/bench/results/latest.json
            (default: the repository, replacing the committed results)

Environment: BENCH_SCALE, BENCH_ONLY, BENCH_OUT as the flags; BENCH_DATABASE_URL (default
TESSERA_TEST_DATABASE_URL); BENCH_IMAGE, the local image of the container rows (default
TESSERA_TEST_IMAGE; none skips them); sizes and Tessera's shape: ${KNOWN_SIZE_VARIABLES}.`;
}

/** Thrown for --help: the caller prints benchUsage() and runs nothing. */
export class HelpRequested extends Error {
  constructor() {
    super('help requested');
  }
}

/**
 * The flags given, each once. Anything else is an error naming it rather than being ignored: a
 * mistyped flag used to start the whole four-minute run and overwrite the committed results.
 */
function readFlags(argv: string[]): Partial<Record<Flag, string>> {
  const flags: Partial<Record<Flag, string>> = {};
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--help' || arg === '-h') throw new HelpRequested();
    const match = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    const name = match?.[1] as Flag | undefined;
    if (!match || !FLAGS.includes(name!)) {
      throw new Error(`unknown argument ${JSON.stringify(arg)}: the bench takes ${FLAGS.map((known) => `--${known}`).join(', ')} (see --help)`);
    }
    let value = match[2];
    if (value === undefined) {
      value = argv[index + 1];
      if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value (see --help)`);
      index++;
    }
    if (flags[name!] !== undefined) throw new Error(`--${name} is given twice (${JSON.stringify(flags[name!])} and ${JSON.stringify(value)})`);
    flags[name!] = value;
  }
  return flags;
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new Error(`${name}=${JSON.stringify(value)} must be a whole number ≥ 1, e.g. ${fallback}`);
  return number;
}

/** The BENCH_ variable that sets a size: throughputJobs → BENCH_THROUGHPUT_JOBS. */
const sizeVariable = (key: string): string => `BENCH_${key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
const SIZE_VARIABLES = Object.keys(SCALES.full).map(sizeVariable);
const SHAPE_VARIABLES = ['BENCH_TESSERA_WORKERS', 'BENCH_TESSERA_SLOTS', 'BENCH_TESSERA_CHUNKS_PER_JOB', 'BENCH_TESSERA_PREFETCH'];
const KNOWN_SIZE_VARIABLES = [...SIZE_VARIABLES, ...SHAPE_VARIABLES].join(', ');
const KNOWN_VARIABLES = new Set(['BENCH_SCALE', 'BENCH_ONLY', 'BENCH_OUT', 'BENCH_DATABASE_URL', 'BENCH_IMAGE', ...SIZE_VARIABLES, ...SHAPE_VARIABLES]);

/** Reads the flags and BENCH_ variables; an unknown or malformed one is an error saying which. */
export function benchOptions(argv = process.argv.slice(2), env = process.env): BenchOptions {
  const flags = readFlags(argv);
  // A mistyped size (BENCH_THROUGHPUT_JOB=100) would otherwise run the full size unnoticed.
  const unknown = Object.keys(env).filter((name) => name.startsWith('BENCH_') && !KNOWN_VARIABLES.has(name));
  if (unknown.length > 0) throw new Error(`unknown environment variable ${unknown.join(', ')}: the bench reads ${[...KNOWN_VARIABLES].join(', ')}`);
  const scale = flags.scale ?? env.BENCH_SCALE ?? 'full';
  if (scale !== 'full' && scale !== 'smoke') throw new Error(`--scale / BENCH_SCALE ${JSON.stringify(scale)} must be "full" or "smoke"`);
  const base = SCALES[scale];
  const sizes = Object.fromEntries(
    Object.entries(base).map(([key, value]) => {
      const envName = sizeVariable(key);
      return [key, positive(envName, env[envName], value)];
    }),
  ) as unknown as Sizes;
  const onlyText = flags.only ?? env.BENCH_ONLY;
  const only = onlyText ? onlyText.split(',').map((name) => name.trim()) : [...BENCHMARKS];
  for (const name of only) if (!(BENCHMARKS as readonly string[]).includes(name)) throw new Error(`--only ${JSON.stringify(name)} is not a benchmark (${BENCHMARKS.join(', ')})`);
  return {
    scale,
    sizes,
    only: only as BenchmarkName[],
    outDir: path.resolve(flags.out ?? env.BENCH_OUT ?? packageRoot()),
    databaseUrl: env.BENCH_DATABASE_URL || env.TESSERA_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
    tesseraWorkers: positive('BENCH_TESSERA_WORKERS', env.BENCH_TESSERA_WORKERS, 1),
    tesseraSlots: positive('BENCH_TESSERA_SLOTS', env.BENCH_TESSERA_SLOTS, 16 * availableParallelism()),
    tesseraChunksPerJob: positive('BENCH_TESSERA_CHUNKS_PER_JOB', env.BENCH_TESSERA_CHUNKS_PER_JOB, 20_000),
    tesseraPrefetch: positive('BENCH_TESSERA_PREFETCH', env.BENCH_TESSERA_PREFETCH, 1_000),
    image: env.BENCH_IMAGE || env.TESSERA_TEST_IMAGE || undefined,
  };
}
