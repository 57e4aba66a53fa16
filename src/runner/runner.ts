import { spawn, spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { TesseraError, quote } from '../domain/errors.js';
import type { Manifest } from '../domain/manifest.js';
import { USAGE_FILE_VARIABLE, readUsageFile, sampleProcess } from './process-usage.js';

// Runs one partitioner, app or assembler invocation as a child process in its own process group,
// so a timeout or an abort kills everything it started, not just the first process.

export interface RunSpec {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Bytes of stdout and of stderr kept (the tail). */
  outputLimit?: number;
  /** Every chunk the process writes, as it comes (the task's logs). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  /** Where a usage bootstrap (process-usage.ts) in `args` reports the process's CPU and peak memory. */
  usageFile?: string | undefined;
}

/** What the process used: its CPU (with the children it waited for), wall time and peak memory. */
export interface RunUsage {
  cpuSeconds: number;
  wallSeconds: number;
  peakMemoryBytes: number;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  stdoutTail: string;
  stderrTail: string;
  wallMs: number;
  usage: RunUsage;
}

/** The last `limit` bytes of a process's output stream. */
export class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length;
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/** Kills a process group (a task's process and everything it started); nothing if it is gone. */
export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

export function runProcess(spec: RunSpec): Promise<RunResult> {
  const started = Date.now();
  const startedAt = process.hrtime.bigint();
  const limit = spec.outputLimit ?? 64 * 1024;
  const usageFile = spec.usageFile;
  return new Promise((resolve, reject) => {
    // Only a bootstrap reads (and removes) the variable; other commands never see it.
    const env = usageFile ? { ...spec.env, [USAGE_FILE_VARIABLE]: usageFile } : spec.env;
    const child = spawn(spec.command, spec.args, { cwd: spec.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    // The fallback when the process cannot report itself (not python or node, or killed).
    const sampler = child.pid ? sampleProcess(child.pid) : null;
    const stdout = new OutputTail(limit);
    const stderr = new OutputTail(limit);
    let timedOut = false;
    let aborted = false;
    const stop = () => {
      if (child.pid) killGroup(child.pid);
    };
    const timer = spec.timeoutMs ? setTimeout(() => ((timedOut = true), stop()), spec.timeoutMs) : undefined;
    const onAbort = () => ((aborted = true), stop());
    if (spec.signal?.aborted) onAbort();
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      spec.onOutput?.('stdout', chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr.push(chunk);
      spec.onOutput?.('stderr', chunk);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      sampler?.stop();
      spec.signal?.removeEventListener('abort', onAbort);
      reject(new TesseraError('FAILED_PRECONDITION', `could not start ${quote(spec.command)}: ${error.message}`, { hint: 'check that the interpreter is installed on the worker and on its PATH' }));
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      sampler?.stop();
      spec.signal?.removeEventListener('abort', onAbort);
      // Children the entrypoint left behind in its group go too.
      stop();
      const wallSeconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      const measured = (usageFile ? readUsageFile(usageFile) : null) ?? sampler?.last() ?? { cpuSeconds: 0, peakMemoryBytes: 0 };
      resolve({ exitCode, signal, timedOut, aborted, stdoutTail: stdout.text(), stderrTail: stderr.text(), wallMs: Date.now() - started, usage: { ...measured, wallSeconds } });
    });
  });
}

/**
 * The interpreter's real path and the folder it is installed in. `python3` is often a shim (pyenv,
 * asdf) that costs tens of milliseconds per start; asking the interpreter once where it lives skips
 * that for every task, and a sandbox shows that folder (read-only) to its tasks.
 */
export function describePython(python: string, env: Record<string, string>): { executable: string; prefix: string } {
  const answer = spawnSync(python, ['-c', 'import sys; print(sys.executable); print(sys.base_prefix)'], { env, encoding: 'utf8', timeout: 10_000 });
  const [executable = '', prefix = ''] = answer.status === 0 ? answer.stdout.trim().split('\n') : [];
  if (executable && path.isAbsolute(executable) && existsSync(executable)) return { executable, prefix: path.isAbsolute(prefix) ? prefix : path.dirname(path.dirname(executable)) };
  return { executable: python, prefix: '/usr' };
}

export function resolvePython(python: string, env: Record<string, string>): string {
  return describePython(python, env).executable;
}

/**
 * Entrypoints already checked, by component folder and entrypoint. A component's folder is named
 * by its archive's hash and never changes once unpacked, so the answer does not either: three
 * file system calls fewer before every process.
 */
const checkedEntrypoints = new Map<string, string>();
const CHECKED_ENTRYPOINTS_KEPT = 256;

/** The entrypoint's real path, once it is known to be a file inside the component's app/ folder. */
export function entrypointPath(folder: string, manifest: Manifest): string {
  const key = `${folder}\0${manifest.entrypoint}`;
  let real = checkedEntrypoints.get(key);
  if (real === undefined) {
    real = checkedEntrypoint(folder, manifest);
    if (checkedEntrypoints.size >= CHECKED_ENTRYPOINTS_KEPT) checkedEntrypoints.clear();
    checkedEntrypoints.set(key, real);
  }
  return real;
}

function checkedEntrypoint(folder: string, manifest: Manifest): string {
  const appDir = path.join(folder, 'app');
  const script = path.resolve(appDir, manifest.entrypoint);
  if (!existsSync(script)) {
    throw new TesseraError('FAILED_PRECONDITION', `${manifest.name}@${manifest.version}: entrypoint ${quote(manifest.entrypoint)} does not exist in its app/ folder`, { hint: 'set "entrypoint" in manifest.json to a file inside app/, e.g. "main.py"' });
  }
  // Symlinks are resolved before the check, so a link cannot point the entrypoint outside the folder.
  const real = realpathSync(script);
  if (!real.startsWith(realpathSync(appDir) + path.sep)) {
    throw new TesseraError('FAILED_PRECONDITION', `${manifest.name}@${manifest.version}: entrypoint ${quote(manifest.entrypoint)} is outside its app/ folder`, { hint: 'the entrypoint must be a file inside app/' });
  }
  return real;
}

/** The last lines of a failed run's stderr (or stdout), for an error message. */
export function failureSummary(result: RunResult & { memoryLimitBytes?: number }, what: string, timeoutMs?: number): string {
  const tail = (result.stderrTail.trim() || result.stdoutTail.trim()).split('\n').slice(-15).join('\n');
  const last = tail.length > 2000 ? `…${tail.slice(-2000)}` : tail;
  const how = result.memoryLimitBytes
    ? `was stopped at its memory limit of ${Math.round(result.memoryLimitBytes / 2 ** 20)} MB (raise the app's device_requirements.min_memory, or the worker's TESSERA_TASK_MEMORY_MB)`
    : result.timedOut
    ? `timed out after ${Math.round((timeoutMs ?? 0) / 1000)} s and was killed`
    : result.aborted
      ? 'was stopped'
      : result.signal
        ? `was killed by ${result.signal}`
        : `exited with code ${result.exitCode}`;
  return `${what} ${how}${last ? `: ${last}` : ''}`;
}
