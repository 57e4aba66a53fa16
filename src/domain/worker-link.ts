import type { JobState } from './job-state.js';
import type { Manifest } from './manifest.js';
import type { TaskKind } from './types.js';

// What a worker needs from the platform, whether it runs inside the server process (embedded)
// or talks to a server over HTTP. The worker loop is written against this and nothing else.

/** Tasks one lease call may ask for, and completions one call may carry (the worker API's limits). */
export const MAX_LEASE_BATCH = 1000;
export const COMPLETION_BATCH = 1000;
/** Files a worker moves to or from the blob store at once for one task: a job's thousands of chunks must not take longer than a lease. */
export const TRANSFER_CONCURRENCY = 8;

export interface TaskLease {
  taskId: number;
  leaseToken: string;
  jobId: string;
  /** The job's account (for USER_CACHE_DIR). */
  accountId: string;
  kind: TaskKind;
  chunkIndex: number;
  attempt: number;
  maxAttempts: number;
  /** App tasks: the blob holding the chunk. */
  inputKey: string | null;
  /** The chunk's size when the server knows it; 0 means an empty chunk, made without a download. */
  inputSize: number | null;
  /**
   * null means the built-in passthrough (partitioner or assembler). Otherwise the component's
   * files are the archive with this content hash, fetched with fetchComponent and cached by hash.
   */
  component: { manifest: Manifest; archive: { sha256: string; size: number }; registry?: RegistryCredentials } | null;
  /** This stage's params (PARTITIONER_PARAMS / APP_PARAMS / ASSEMBLER_PARAMS). */
  params: Record<string, unknown>;
  /** config.taskTimeout in milliseconds, if the job set one. */
  timeoutMs: number | undefined;
}

/**
 * Credentials to pull a component's private image, when its manifest names an account secret for
 * them (platform_config.token "secret:<id>"): opened by the server for the lease, used by the worker
 * through a file only it reads, never logged.
 */
export interface RegistryCredentials {
  username: string;
  token: string;
}

/** Log levels as ByteNite's logs call names them; a line's level comes from its text or its stream. */
export const LOG_LEVELS = ['UNKNOWN', 'TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL', 'PANIC'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogLine {
  /** When the line was written (RFC 3339). */
  at: string;
  stream: 'stdout' | 'stderr';
  level: LogLevel;
  line: string;
}

/** Log lines of a running attempt, streamed before its report (POST /v1/worker/logs). */
export interface LiveLogBatch {
  lease: TaskLease;
  lines: LogLine[];
}

/** What one live-log call may carry: lines in all, and characters of line text in all. */
export const LIVE_LOG_CALL_LINES = 1000;
export const LIVE_LOG_CALL_CHARS = 512 * 1024;

/** What the child process of one attempt used. */
export interface TaskUsage {
  cpuSeconds: number;
  wallSeconds: number;
  peakMemoryBytes: number;
}

/** Sent with a completion or a failure: the attempt's logs (bounded) and, if a process ran, its usage. */
export interface TaskReport {
  logs: LogLine[];
  usage: TaskUsage | null;
}

export const EMPTY_REPORT: TaskReport = { logs: [], usage: null };

export interface OutputFile {
  /** The name the file goes by (result name, chunk name, output name). */
  name: string;
  /**
   * Where the file is. Null for an empty chunk an in-process partitioner made without a file
   * (empty-chunks): nothing to read, nothing to upload.
   */
  path: string | null;
}

/**
 * A finished task's file as its completion names it over the worker protocol: the blob key it was
 * uploaded under, or null for a partition's empty chunk, which is not uploaded (the worker of its
 * app task makes the empty file itself).
 */
export interface ReportedOutput {
  name: string;
  blobKey: string | null;
}

export interface WorkerLink {
  /** Up to `max` tasks this worker may run; waits up to `waitMs` for one to appear. */
  lease(max: number, waitMs: number, signal?: AbortSignal): Promise<TaskLease[]>;
  /**
   * Hands back leases of tasks that never started (a stopping worker's local queue): queued again,
   * the attempt not counted. With `everything`, also whatever else the server has leased to this
   * worker: called last when stopping, it catches a lease whose answer was cut off by the stop.
   */
  release(leases: TaskLease[], everything?: boolean): Promise<void>;
  /** Extends the leases; returns the task ids whose lease is lost (the worker must stop them). */
  heartbeat(leases: TaskLease[]): Promise<number[]>;
  /** Announces that the job entered `state` (e.g. PARTITIONING); throws if the job stopped running. */
  enterStage(lease: TaskLease, state: JobState): Promise<void>;
  /** The component archive with this content hash (a .tgz) into `filePath`. */
  fetchComponent(sha256: string, filePath: string): Promise<void>;
  /** Partition task: fetches the job's input into `folder`. */
  fetchSource(lease: TaskLease, folder: string): Promise<void>;
  /** App task: the chunk's bytes into `filePath`. */
  fetchChunk(lease: TaskLease, filePath: string): Promise<void>;
  /** Assemble task: every app task's result files into `folder`, names made unique. */
  fetchResults(lease: TaskLease, folder: string): Promise<void>;
  /**
   * Stores the task's files (chunks, results or the job's output) and completes the task. False if
   * the lease was lost. Each file is deleted once it is stored: they are the task's scratch files,
   * and a partition's chunks then leave the disk while it uploads, rather than all at once while
   * its app tasks are already running.
   */
  complete(lease: TaskLease, files: OutputFile[], report: TaskReport): Promise<boolean>;
  /**
   * Optional push of "job stopped" (abort, timeout) so running tasks are killed at once rather
   * than at the next heartbeat. Returns the unsubscribe function.
   */
  onJobStopped?(listener: (jobId: string) => void): () => void;
  /**
   * Stores lines of running attempts (their lease still current, or their job aborted under them)
   * and wakes followers; returns the task ids whose lease is not current, whose lines were dropped.
   */
  appendLogs(batches: LiveLogBatch[]): Promise<number[]>;
  /** Tells the server a task whose lease was lost (its job aborted) has stopped running. */
  stopped(lease: TaskLease): Promise<void>;
  /**
   * Records a failed attempt; `retry: false` when trying again cannot help; `lost` when it was no
   * failure of the task's own (the worker was stopped under it), which costs the task no attempt.
   */
  fail(lease: TaskLease, error: string, retry: boolean, report: TaskReport, lost?: boolean): Promise<void>;
}
