import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packFolder } from '../src/blobs/archive.js';
import { resolvePython } from '../src/runner/runner.js';
import type { BenchOptions } from './lib/options.js';
import { round } from './lib/stats.js';
import { api, between, completedJob, runJob, startCluster } from './lib/tessera.js';

// Figure 3: what Tessera adds to real per-chunk processes. The same python3 script burns the
// same CPU on each of the same empty chunk files, once under `xargs -P2` and as a Tessera job
// (server + one worker agent with 2 slots, end to end: create → COMPLETE as the database
// recorded them): as it runs by default, confined in the host sandbox and forked from its warm
// launcher (runner/launcher.py); with every process started from scratch as xargs starts them
// (still confined), which is what Tessera adds around the processes alone; and with the sandbox
// off, which shows what confinement costs. Then the same script in a container image, a podman
// run per chunk under xargs against a Tessera job whose app names the image.

export interface XargsResult {
  overhead_vs_xargs: number;
  xargs_seconds: number;
  tessera_seconds: number;
  /** TESSERA_PYTHON_FORKSERVER=false. */
  overhead_vs_xargs_cold: number;
  tessera_cold_seconds: number;
  /** TESSERA_SANDBOX=off. */
  overhead_vs_xargs_unconfined: number;
  tessera_unconfined_seconds: number;
  /** The container rows, or why they were not run (no podman, no image). */
  containers: { chunks: number; image: string; xargs_podman_seconds: number; tessera_seconds: number; overhead_vs_xargs_podman: number } | { skipped: string };
}

/** Reads its chunk (argv[1], or TASK_DIR/data.bin under Tessera), then burns `burnMs` of CPU. */
function burnScript(burnMs: number): string {
  return [
    'import os, sys, time',
    "path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ['TASK_DIR'], 'data.bin')",
    "open(path, 'rb').read()",
    `end = time.process_time() + ${burnMs / 1000}`,
    'while time.process_time() < end:',
    '    pass',
    '',
  ].join('\n');
}

async function timed(command: string, args: string[], cwd: string): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}`))));
  });
  return (performance.now() - started) / 1000;
}

export async function xargsBenchmark(options: BenchOptions): Promise<XargsResult> {
  const { xargsChunks: chunks, containerChunks, burnMs } = options.sizes;
  const scratch = mkdtempSync(path.join(tmpdir(), 'tessera-bench-xargs-'));
  try {
    const component = path.join(scratch, 'component');
    mkdirSync(path.join(component, 'app'), { recursive: true });
    writeFileSync(path.join(component, 'app', 'main.py'), burnScript(burnMs));
    writeFileSync(path.join(component, 'manifest.json'), JSON.stringify({ name: 'bench-burn', version: '1.0', type: 'app', entrypoint: 'main.py' }));
    const archive = (await packFolder(component)).toString('base64');
    const image = options.image;

    // The same interpreter Tessera's worker resolves, not a wrapper script in front of it.
    const python = resolvePython('python3', { PATH: process.env.PATH ?? '' });
    const chunksDir = path.join(scratch, 'chunks');
    mkdirSync(chunksDir);
    // As many chunk files as the larger of the two jobs needs; each runner takes the first ones.
    for (let chunkIndex = 0; chunkIndex < Math.max(chunks, containerChunks); chunkIndex++) writeFileSync(path.join(chunksDir, `data_${chunkIndex}.bin`), '');
    const xargsSeconds = await timed('sh', ['-c', `ls chunks | head -n ${chunks} | sed 's|^|chunks/|' | xargs -P2 -n1 ${python} component/app/main.py`], scratch);
    const tesseraSeconds = await tesseraJob(options, archive, chunks, {});
    const coldSeconds = await tesseraJob(options, archive, chunks, { TESSERA_PYTHON_FORKSERVER: 'false' });
    const unconfinedSeconds = await tesseraJob(options, archive, chunks, { TESSERA_SANDBOX: 'off' });
    return {
      overhead_vs_xargs: round(tesseraSeconds / xargsSeconds, 3),
      xargs_seconds: round(xargsSeconds, 2),
      tessera_seconds: round(tesseraSeconds, 2),
      overhead_vs_xargs_cold: round(coldSeconds / xargsSeconds, 3),
      tessera_cold_seconds: round(coldSeconds, 2),
      overhead_vs_xargs_unconfined: round(unconfinedSeconds / xargsSeconds, 3),
      tessera_unconfined_seconds: round(unconfinedSeconds, 2),
      containers: await containerRows(options, scratch, component, image, containerChunks),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The same script in an image: a `podman run` per chunk under xargs -P2, against a Tessera job whose app names the image. */
async function containerRows(options: BenchOptions, scratch: string, component: string, image: string | undefined, chunks: number): Promise<XargsResult['containers']> {
  if (!image) return { skipped: 'no image: set BENCH_IMAGE (scripts/test-image.sh makes one)' };
  if (spawnSync('podman', ['image', 'exists', image]).status !== 0) return { skipped: `podman has no image ${image}` };
  const manifest = JSON.parse(readFileSync(path.join(component, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(path.join(component, 'manifest.json'), JSON.stringify({ ...manifest, name: 'bench-burn-image', platform_config: { container: image } }));
  const archive = (await packFolder(component)).toString('base64');
  // The flags Tessera gives a task's container that change what podman does at start: user, network, limits.
  const run = `podman run --rm --network none --user 65534:65534 --cap-drop all --security-opt no-new-privileges --memory 2g --pids-limit 512 --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 -v ${component}:/component:ro -v ${scratch}/chunks:/chunks:ro ${image} python3 -u /component/app/main.py`;
  const xargsSeconds = await timed('sh', ['-c', `ls chunks | head -n ${chunks} | sed 's|^|/chunks/|' | xargs -P2 -n1 ${run} >/dev/null`], scratch);
  const tesseraSeconds = await tesseraJob(options, archive, chunks, { TESSERA_HOST_IMAGES: '' }, 'bench-burn-image');
  return { chunks, image, xargs_podman_seconds: round(xargsSeconds, 2), tessera_seconds: round(tesseraSeconds, 2), overhead_vs_xargs_podman: round(tesseraSeconds / xargsSeconds, 3) };
}

/** Seconds from create to COMPLETE of the job on a new cluster with these settings. */
async function tesseraJob(options: BenchOptions, archive: string, chunks: number, env: Record<string, string>, app = 'bench-burn'): Promise<number> {
  const tessera = await startCluster(options.databaseUrl, { workers: 1, slots: 2, env });
  try {
    await api(tessera.url, 'POST', '/v1/dev/apps', { data: archive });
    await api(tessera.url, 'POST', '/v1/dev/templates', { id: 'bench-burn', app, partitioner: 'empty-chunks', assembler: 'passthrough', dataSource: { dataSourceDescriptor: 'bypass' } });
    // Create → COMPLETE on the database's clock (two timestamps its transactions wrote), so the
    // client can look rarely: asking every 20 ms cost the server and PostgreSQL about a second
    // of CPU in a 9 s run, taken from the same two cores as the python processes.
    const jobId = await runJob(tessera.url, 'bench-burn', { partitioner: { chunks } });
    const job = await completedJob(tessera.url, jobId, 60_000 + chunks * 1_000, 250);
    return between(job, 'NEW', 'COMPLETE') / 1000;
  } finally {
    await tessera.stop();
  }
}
