import type { JobState } from './job-state.js';

export const PRIORITIES = [
  'EXECUTION_PRIORITY_UNDEFINED',
  'EXECUTION_PRIORITY_CHEAP',
  'EXECUTION_PRIORITY_BALANCED',
  'EXECUTION_PRIORITY_FAST',
] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Leasing order: a higher rank is leased first. */
export function priorityRank(priority: Priority): number {
  return PRIORITIES.indexOf(priority);
}

export interface JobConfig {
  taskTimeout?: number;
  jobTimeout?: number;
  isTestJob?: boolean;
  maxTaskRetries?: number;
  /** Which workers may run the job's tasks: the shared fleet or the account's own (ANY, the default), or only its own. */
  workerPool?: WorkerPool;
}

export const WORKER_POOLS = ['WORKER_POOL_ANY', 'WORKER_POOL_PRIVATE'] as const;
export type WorkerPool = (typeof WORKER_POOLS)[number];

export interface DataSource {
  dataSourceDescriptor: string;
  params?: Record<string, unknown>;
}

export interface JobParams {
  preset?: string;
  partitioner?: Record<string, unknown>;
  assembler?: Record<string, unknown>;
  app?: Record<string, unknown>;
}

export interface Regions {
  whitelist?: string[];
  blacklist?: string[];
}

export interface Job {
  id: string;
  accountId: string;
  templateId: string;
  name: string;
  description: string;
  state: JobState;
  priority: Priority;
  config: JobConfig;
  regions: Regions;
  dataSource: DataSource;
  dataDestination: DataSource;
  params: JobParams;
  appId: string;
  numChunks: number | null;
  /** App tasks finished so far. */
  chunksDone: number;
  /** Failed attempts of app tasks (retried or not). */
  attemptsFailed: number;
  /** Summed over every attempt of every task; units are vCPU·GiB·hours. */
  usage: JobUsage;
  errorMessage: string | null;
  stateTimestamps: Partial<Record<JobState, Date>>;
  createdAt: Date;
  startAt: Date | null;
  submittedAt: Date | null;
  startedAt: Date | null;
  endedAt: Date | null;
  deletedAt: Date | null;
  /** File source: when the client said its upload was complete. */
  uploadCompletedAt: Date | null;
  /** When the retention sweep deleted the job's temporary storage (results, uploads). */
  blobsDeletedAt: Date | null;
}

export interface JobUsage {
  cpuSeconds: number;
  wallSeconds: number;
  /** The largest peak of any one attempt. */
  peakMemoryBytes: number;
  units: number;
}

export interface Template {
  id: string;
  owner: string;
  description: string;
  app: string;
  partitioner: string;
  assembler: string;
  dataSource?: DataSource;
  dataDestination?: DataSource;
  params?: JobParams;
  config?: JobConfig;
  /** The job type shown by the async job view (/v2/accounts/…/jobs/{jobType}/…). */
  jobType?: string;
  /** Named param sets a client may start from (GET /v1/customer/jobs/templates/{id}/presets). */
  presets?: TemplatePreset[];
}

export interface TemplatePreset {
  name: string;
  description: string;
  params: JobParams;
}

export type TaskKind = 'partition' | 'app' | 'assemble';
/** 'cancelling': the job was aborted while the task ran; 'cancelled' once its process is known to have stopped. */
export type TaskState = 'queued' | 'leased' | 'succeeded' | 'failed' | 'cancelling' | 'cancelled';
