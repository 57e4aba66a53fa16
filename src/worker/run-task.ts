import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { opendir, readdir, rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { TesseraError, assertNever, quote } from '../domain/errors.js';
import { inProcessName, usesFiles } from '../domain/in-process.js';
import type { OutputFile, TaskLease, TaskReport, WorkerLink } from '../domain/worker-link.js';
import { entrypointPath, failureSummary } from '../runner/runner.js';
import type { Runtime, TaskLimits } from '../runner/runtime.js';
import type { RuntimeSettings } from '../runner/create-runtime.js';
import type { Config } from '../config/config.js';
import type { Log } from '../domain/log.js';
import type { ComponentCache } from './component-cache.js';
import { createComponentCache } from './component-cache.js';
import { runInProcess } from './in-process.js';
import { LogCollector } from './task-logs.js';
import type { LiveLogs, LogShipper } from './log-shipper.js';
import { createLogShipper } from './log-shipper.js';

// Runs one leased task: prepares its folders, fetches its input, runs the component with the
// engine contract's environment, and hands the files it wrote back to the link. The temporary
// folder is removed whatever happens.

export interface TaskEnvironment {
  workDir: string;
  sharedCacheDir: string;
  userCacheRoot: string;
  /** Component folders by archive hash. */
  components: ComponentCache;
  /** Log lines kept per attempt. */
  maxLogLines: number;
  /** Where every task process runs: the host sandbox, a container, or (sandbox off) the host. */
  runtime: Runtime;
  /** A task's limits; its memory is the larger of this and its app's min_memory. */
  limits: TaskLimits;
  /** What one task may hand over in all (chunks, results or output). */
  maxOutputBytes: number;
  /** Streams the lines of running processes; without it lines travel only in the attempt's report. */
  logShipper?: LogShipper;
}

/** What one attempt's process wrote and used, filled in by `execute`. */
interface Attempt {
  logs: LogCollector;
  /** Set once a process starts: its lines stream while it runs. */
  live?: LiveLogs;
  report(): TaskReport;
  usage: TaskReport['usage'];
}

/** The environment of a worker's tasks, from the settings: its folders under the home folder, its runtime, its limits. */
export function taskEnvironment(config: Config, link: Pick<WorkerLink, 'fetchComponent' | 'appendLogs'>, runtime: Runtime, log?: Log): TaskEnvironment {
  return {
    workDir: config.workDir,
    sharedCacheDir: path.join(config.home, 'cache', 'shared'),
    userCacheRoot: path.join(config.home, 'cache', 'accounts'),
    components: createComponentCache(path.join(config.home, 'cache', 'components'), link, { maxBytes: config.maxUnpackedBytes, maxEntries: config.maxArchiveEntries }, log),
    maxLogLines: config.maxLogLinesPerTask,
    runtime,
    limits: { memoryBytes: config.taskMemoryBytes, processes: config.taskProcesses, openFiles: config.taskOpenFiles, fileBytes: config.taskMaxFileBytes },
    maxOutputBytes: config.taskMaxOutputBytes,
    logShipper: createLogShipper(link, log),
  };
}

/** The runtime layer's settings from the configuration; `hostImages` when TESSERA_HOST_IMAGES is not set. */
export function runtimeSettings(config: Config, hostImages: string[]): RuntimeSettings {
  return {
    sandbox: config.sandbox,
    python: config.python,
    warmPython: config.pythonForkServer,
    runtimeDir: config.runtimeDir,
    workDir: config.workDir,
    taskUser: config.taskUser,
    network: config.taskNetwork,
    containerRuntime: config.containerRuntime,
    hostImages: config.hostImages ?? hostImages,
    baseEnv: config.childEnv,
  };
}

export type TaskOutcome = 'completed' | 'failed' | 'lost';

/**
 * A held task's stop switch. Its AbortSignal, an EventTarget of about a kilobyte, is made only when
 * asked for, by a task that starts a process: the thousands of in-process tasks a second only read
 * `stopped`, and a server running them no longer fills its memory with signals awaiting collection.
 */
export class TaskStop {
  private controller: AbortController | undefined;
  private stopRequested = false;

  get stopped(): boolean {
    return this.stopRequested;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.stopRequested) this.controller.abort();
    }
    return this.controller.signal;
  }

  stop(): void {
    this.stopRequested = true;
    this.controller?.abort();
  }
}

/** A failure of the component itself (not of Tessera): reported as the task's error. */
class ComponentFailure extends Error {
  constructor(message: string, readonly retry: boolean) {
    super(message);
  }
}

/**
 * A task's temporary folder, made on first use: an in-process app that reads no chunk and writes
 * no result (noop) never touches the disk. Its folders are made with synchronous calls: a few
 * metadata system calls, each a round trip through node's thread pool otherwise, one after another
 * before every process a task starts (about a millisecond each on a busy two-core machine here).
 */
class Scratch {
  private root: string | undefined;
  private readonly made = new Set<string>();

  constructor(private readonly workDir: string, private readonly taskId: number) {}

  /** The task's folder, made if it was not. */
  get path(): string {
    this.root ??= this.makeRoot();
    return this.root;
  }

  folder(name: string): string {
    this.root ??= this.makeRoot();
    const dir = `${this.root}/${name}`;
    if (!this.made.has(name)) {
      mkdirSync(dir);
      this.made.add(name);
    }
    return dir;
  }

  private makeRoot(): string {
    // The work folder is made when a first mkdtemp finds it missing, not checked before every task.
    const prefix = path.join(this.workDir, `task-${this.taskId}-`);
    try {
      return mkdtempSync(prefix);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      mkdirSync(this.workDir, { recursive: true });
      return mkdtempSync(prefix);
    }
  }

  async remove(): Promise<void> {
    const root = this.root;
    if (!root) return;
    try {
      if (removeSmallTree(root, { left: SMALL_TREE_ENTRIES })) return;
    } catch {
      // Left to the removals below, which say nothing either.
    }
    // What removeTree could not remove (a folder the component made read-only, say) gets fs.rm's go.
    await removeTree(root).catch(() => rm(root, { recursive: true, force: true }));
  }
}

/** Entries a task folder may hold for it to be removed without yielding to the event loop. */
const SMALL_TREE_ENTRIES = 64;

/**
 * Removes a folder of at most `budget.left` entries in all with synchronous calls; false, with part
 * of it perhaps removed, when it holds more. An app task's folder holds a handful (its chunk and
 * three empty folders): removed through the thread pool, an opendir, a read and a close per
 * folder, that was 1.9 ms of the worker agent's main thread per task here; this is a few calls.
 * A symbolic link is removed, never followed.
 */
function removeSmallTree(dir: string, budget: { left: number }): boolean {
  const entries = readdirSync(dir, { withFileTypes: true });
  budget.left -= entries.length;
  if (budget.left < 0) return false;
  for (const entry of entries) {
    const full = `${dir}/${entry.name}`;
    if (!entry.isDirectory()) unlinkSync(full);
    else if (!removeSmallTree(full, budget)) return false;
  }
  rmdirSync(dir);
  return true;
}

/** Files removed at once by removeTree. */
const REMOVE_AT_ONCE = 64;

/**
 * Removes a folder and everything in it with at most REMOVE_AT_ONCE removals in flight. fs.rm's
 * recursive removal starts one for every entry at once: a partition's 100,000 chunk files then
 * held tens of megabytes alive at the same moment, which the server kept long after.
 */
async function removeTree(dir: string): Promise<void> {
  const pending: Promise<void>[] = [];
  // Entries are read a few at a time and each is removed after it was read, as rm -r does.
  for await (const entry of await opendir(dir, { bufferSize: REMOVE_AT_ONCE })) {
    const full = path.join(dir, entry.name);
    pending.push(entry.isDirectory() ? removeTree(full) : unlink(full));
    if (pending.length >= REMOVE_AT_ONCE) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await rmdir(dir);
}

/** Cache folders this process has made (Tessera never removes them): made once, not before every task. */
const madeCacheFolders = new Set<string>();
const MADE_CACHE_FOLDERS_KEPT = 10_000;

function cacheFolder(dir: string): void {
  if (madeCacheFolders.has(dir)) return;
  mkdirSync(dir, { recursive: true });
  if (madeCacheFolders.size >= MADE_CACHE_FOLDERS_KEPT) madeCacheFolders.clear();
  madeCacheFolders.add(dir);
}

/** `onProduced` is called once the work is done and only its report (uploads, completion) remains. */
export async function runTask(link: WorkerLink, lease: TaskLease, env: TaskEnvironment, stop: TaskStop, onProduced?: () => void): Promise<TaskOutcome> {
  const scratch = new Scratch(env.workDir, lease.taskId);
  const attempt: Attempt = {
    logs: new LogCollector(env.maxLogLines),
    usage: null,
    report() {
      return { logs: this.logs.lines(), usage: this.usage };
    },
  };
  try {
    const files = await produce(link, lease, env, scratch, stop, attempt);
    if (stop.stopped) return await stopped(attempt);
    onProduced?.();
    // Lines stored while it ran are not in its report (detach waits for a call under way).
    await attempt.live?.detach();
    return (await link.complete(lease, files, attempt.report())) ? 'completed' : 'lost';
  } catch (error) {
    if (stop.stopped) return await stopped(attempt);
    await attempt.live?.detach();
    const retry = error instanceof ComponentFailure ? error.retry : !(error instanceof TesseraError && error.code === 'INVALID_ARGUMENT');
    await link.fail(lease, error instanceof Error ? error.message : String(error), retry, attempt.report());
    return 'failed';
  } finally {
    await scratch.remove();
  }
}

/** A task stopped under its lease sends no report: what its process wrote and was not streamed yet goes now. */
async function stopped(attempt: Attempt): Promise<TaskOutcome> {
  await attempt.live?.shipRest();
  return 'lost';
}

async function produce(link: WorkerLink, lease: TaskLease, env: TaskEnvironment, scratch: Scratch, stop: TaskStop, attempt: Attempt): Promise<OutputFile[]> {
  const folder = (name: string) => scratch.folder(name);
  const params = JSON.stringify(lease.params ?? {});
  switch (lease.kind) {
    case 'partition': {
      const sourceDir = folder('source');
      const chunksDir = folder('chunks');
      await link.enterStage(lease, 'JOB_STATE_UPLOADING');
      await link.fetchSource(lease, sourceDir);
      await link.enterStage(lease, 'JOB_STATE_PARTITIONING');
      // The built-in passthrough hands over what it was given: no task's output to hold to a limit.
      if (!lease.component) {
        const inputs = await listFiles(sourceDir);
        return inputs.slice(0, 1).map((input) => ({ name: 'data_0.bin', path: input.path }));
      }
      // A built-in partitioner hands its chunks over without writing them.
      const made = await execute(lease, env, scratch, stop, attempt, { folders: { SOURCE_DIR: 'source', CHUNKS_DIR: 'chunks' }, variables: { PARTITIONER_PARAMS: params } });
      return made ?? orderChunks(await listFiles(chunksDir, env.maxOutputBytes));
    }
    case 'app': {
      const inProcess = lease.component ? inProcessName(lease.component.manifest.entrypoint) : undefined;
      if (inProcess && !usesFiles(inProcess)) {
        await runInProcess(inProcess, { APP_PARAMS: params, CHUNK_NUMBER: String(lease.chunkIndex) });
        return [];
      }
      // Synchronous, like the scratch folders (see Scratch): these come before every process.
      const userCacheDir = path.join(env.userCacheRoot, lease.accountId);
      const [taskDir, resultsDir] = [folder('task'), folder('results'), folder('work')];
      cacheFolder(userCacheDir);
      cacheFolder(env.sharedCacheDir);
      const chunkPath = path.join(taskDir, 'data.bin');
      // An empty chunk is made here rather than downloaded: one round trip less per task.
      if (lease.inputSize === 0) writeFileSync(chunkPath, '');
      else await link.fetchChunk(lease, chunkPath);
      await execute(lease, env, scratch, stop, attempt, {
        folders: { TASK_DIR: 'task', TASK_RESULTS_DIR: 'results' },
        variables: { APP_PARAMS: params, CHUNK_NUMBER: String(lease.chunkIndex) },
        caches: { userCache: userCacheDir, sharedCache: env.sharedCacheDir },
      });
      return listFiles(resultsDir, env.maxOutputBytes);
    }
    case 'assemble': {
      const resultsDir = folder('results');
      const outputDir = folder('output');
      await link.enterStage(lease, 'JOB_STATE_MERGING');
      await link.fetchResults(lease, resultsDir);
      if (!lease.component) return listFiles(resultsDir);
      await execute(lease, env, scratch, stop, attempt, { folders: { TASK_RESULTS_DIR: 'results', OUTPUT_DIR: 'output' }, variables: { ASSEMBLER_PARAMS: params } });
      return listFiles(outputDir, env.maxOutputBytes);
    }
    default:
      return assertNever(lease.kind, 'task kind');
  }
}

/** A stage's environment: the folders it names (under the task's folder) and its other variables. */
interface StageEnvironment {
  folders: Record<string, string>;
  variables: Record<string, string>;
  caches?: { userCache: string; sharedCache: string };
}

/** Runs the component; an in-process one may answer with the files it made without writing them. */
async function execute(lease: TaskLease, env: TaskEnvironment, scratch: Scratch, stop: TaskStop, attempt: Attempt, stage: StageEnvironment): Promise<OutputFile[] | undefined> {
  const component = lease.component!;
  // A built-in whose code is part of the worker: no archive to fetch, no process to start.
  const inProcess = inProcessName(component.manifest.entrypoint);
  if (inProcess) {
    const hostEnv = { ...stage.variables };
    for (const [variable, name] of Object.entries(stage.folders)) hostEnv[variable] = scratch.folder(name);
    return runInProcess(inProcess, hostEnv);
  }
  const { manifest } = component;
  const what = `${lease.kind === 'app' ? 'app' : lease.kind === 'partition' ? 'partitioner' : 'assembler'} ${manifest.name}@${manifest.version}`;
  const folder = await env.components.folder(component.archive.sha256);
  scratch.folder('work');
  const minMemoryBytes = (manifest.deviceRequirements.minMemory ?? 0) * 2 ** 30;
  attempt.live ??= env.logShipper?.attach(lease, attempt.logs);
  const result = await env.runtime.run({
    accountId: lease.accountId,
    manifest,
    componentFolder: folder,
    componentSha256: component.archive.sha256,
    entrypoint: entrypointPath(folder, manifest),
    registry: component.registry,
    folders: { root: scratch.path, ...(stage.caches ?? {}) },
    folderVariables: stage.folders,
    variables: stage.variables,
    limits: { ...env.limits, memoryBytes: Math.max(env.limits.memoryBytes, Math.ceil(minMemoryBytes)) },
    timeoutMs: lease.timeoutMs,
    signal: stop.signal,
    onOutput: (stream, chunk) => attempt.logs.write(stream, chunk),
  });
  attempt.usage = result.usage;
  if (result.exitCode === 0 && !result.timedOut && !result.aborted) return undefined;
  // A timeout may be bad luck on a busy machine; a non-zero exit of a partitioner or assembler is
  // the code's own verdict on this input and would say the same again, as is its memory limit.
  throw new ComponentFailure(failureSummary(result, what, lease.timeoutMs), (result.timedOut || lease.kind === 'app') && !result.memoryLimitBytes);
}

/**
 * A listed file. Its path is joined when asked for, not held: a partition lists 100,000 chunks,
 * and 100,000 joined paths (each a tree of string pieces in V8) held through the upload were
 * 45 MB of the server's heap (measured in a heap snapshot), where the names alone are 3 MB.
 */
class ListedFile implements OutputFile {
  constructor(
    private readonly root: string,
    readonly name: string,
  ) {}

  get path(): string {
    return `${this.root}/${this.name}`;
  }
}

/**
 * Every regular file under `dir`, named by its path relative to `dir`. A symbolic link is refused:
 * following it would let a component upload any file the worker can read. Files past `maxBytes`
 * in all are refused too, naming the limit.
 */
export async function listFiles(dir: string, maxBytes = Number.POSITIVE_INFINITY): Promise<OutputFile[]> {
  const files: OutputFile[] = [];
  await listInto(files, path.resolve(dir), '');
  if (Number.isFinite(maxBytes)) {
    let total = 0;
    for (const file of files) {
      total += lstatSync(file.path!).size;
      if (total > maxBytes) throw new ComponentFailure(`the task handed over more than its limit of ${Math.round(maxBytes / 2 ** 20)} MB in files (TESSERA_TASK_MAX_OUTPUT_MB)`, false);
    }
  }
  return files;
}

async function listInto(files: OutputFile[], root: string, prefix: string): Promise<void> {
  // The entries' types come with the listing (node looks each one up only where the file system
  // does not say): no lstat per file of a 100,000-chunk partition.
  const entries = (await readdir(prefix ? `${root}/${prefix}` : root, { withFileTypes: true })).sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0));
  for (const entry of entries) {
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isSymbolicLink()) throw new ComponentFailure(`the output ${quote(name)} is a symbolic link; write regular files instead`, false);
    if (entry.isDirectory()) await listInto(files, root, name);
    else if (entry.isFile()) files.push(new ListedFile(root, name));
  }
}

/** Chunks in the order of their number (data_2.bin before data_10.bin); other names after, by name. */
function orderChunks(files: OutputFile[]): OutputFile[] {
  // Each file's number is read once, not twice per comparison.
  const numbered = files.map((file) => {
    const match = /^data_(\d+)\.bin$/.exec(file.name);
    return { file, number: match ? Number(match[1]) : Number.POSITIVE_INFINITY };
  });
  numbered.sort((left, right) => left.number - right.number || left.file.name.localeCompare(right.file.name));
  return numbered.map((entry) => entry.file);
}
