import { invalidArgument, quote } from '../domain/errors.js';
import type { DataSource, Job, JobConfig, JobParams, Priority, Regions, Template, WorkerPool } from '../domain/types.js';
import { PRIORITIES, WORKER_POOLS } from '../domain/types.js';
import { DEFAULT_DESTINATION, DEFAULT_SOURCE, checkDataDestination, checkDataSource } from '../sources/data-source.js';
import type { JobDraft } from '../store/jobs.js';

// Turns what a customer sends (create, or one of the PATCH updates) into a checked JobDraft.
// Shapes were already checked against the OpenAPI document; this checks meaning and bounds.

export const MAX_TASK_TIMEOUT_SECONDS = 7 * 24 * 3600;
export const MAX_JOB_TIMEOUT_SECONDS = 30 * 24 * 3600;
const MAX_TASK_RETRIES = 100;

export interface JobInput {
  templateId?: string;
  name?: string;
  description?: string;
  priority?: string;
  config?: Record<string, unknown>;
  regions?: Regions;
  dataSource?: DataSource;
  dataDestination?: DataSource;
  params?: JobParams;
  appId?: string;
  startAt?: string;
}

/** int64 values may come as JSON numbers or, protobuf-style, as strings of digits. */
function toInteger(value: unknown, field: string, min: number, max: number): number {
  const number = typeof value === 'string' && /^-?\d{1,16}$/.test(value.trim()) ? Number(value.trim()) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw invalidArgument(field, `${field} ${quote(value)} must be a whole number from ${min} to ${max}`);
  }
  return number;
}

export function checkConfig(raw: Record<string, unknown>, field = 'config'): JobConfig {
  const config: JobConfig = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value === null || value === undefined) continue;
    switch (key) {
      case 'taskTimeout':
        config.taskTimeout = toInteger(value, `${field}.taskTimeout`, 1, MAX_TASK_TIMEOUT_SECONDS);
        break;
      case 'jobTimeout':
        config.jobTimeout = toInteger(value, `${field}.jobTimeout`, 1, MAX_JOB_TIMEOUT_SECONDS);
        break;
      case 'maxTaskRetries':
        config.maxTaskRetries = toInteger(value, `${field}.maxTaskRetries`, 0, MAX_TASK_RETRIES);
        break;
      case 'isTestJob':
        if (typeof value === 'boolean') config.isTestJob = value;
        else if (value === 'true' || value === 'false') config.isTestJob = value === 'true';
        else throw invalidArgument(`${field}.isTestJob`, `${field}.isTestJob ${quote(value)} must be true or false`);
        break;
      case 'workerPool':
        if (!WORKER_POOLS.includes(value as never)) throw invalidArgument(`${field}.workerPool`, `${field}.workerPool ${quote(value)} must be one of ${WORKER_POOLS.join(', ')}`);
        config.workerPool = value as WorkerPool;
        break;
      default:
        throw invalidArgument(`${field}.${key}`, `unknown config field ${quote(key)}`, 'config accepts taskTimeout, jobTimeout, isTestJob, maxTaskRetries and workerPool');
    }
  }
  return config;
}

export function checkParams(raw: JobParams, field = 'params'): JobParams {
  const params: JobParams = {};
  for (const stage of ['partitioner', 'app', 'assembler'] as const) {
    const value = raw[stage];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`${field}.${stage}`, `${field}.${stage} must be a JSON object, got ${quote(value)}`);
    if (JSON.stringify(value).length > 256 * 1024) throw invalidArgument(`${field}.${stage}`, `${field}.${stage} is larger than 256 KiB`, 'pass large inputs through the data source instead');
    params[stage] = value;
  }
  // Deprecated by ByteNite and unused; kept so clients that still send it get it back.
  if (typeof raw.preset === 'string') params.preset = raw.preset;
  return params;
}

export function checkName(value: unknown, field = 'name'): string {
  if (typeof value !== 'string') throw invalidArgument(field, `${field} must be a string, got ${quote(value)}`);
  if (value.length > 256) throw invalidArgument(field, `${field} is ${value.length} characters; the limit is 256`);
  return value;
}

function checkRegions(raw: Regions | undefined): Regions {
  const regions: Regions = {};
  for (const list of ['whitelist', 'blacklist'] as const) {
    const value = raw?.[list];
    if (value === undefined) continue;
    if (value.length > 100 || value.some((region) => region.length === 0 || region.length > 64)) {
      throw invalidArgument(`regions.${list}`, `regions.${list} must hold at most 100 region names of 1-64 characters`);
    }
    regions[list] = value;
  }
  return regions;
}

/** A new job's fields: the request first, then the template's defaults, then Tessera's. */
export function draftFromInput(input: JobInput, template: Template, existing?: Job): JobDraft {
  const priority = (input.priority ?? existing?.priority ?? 'EXECUTION_PRIORITY_UNDEFINED') as Priority;
  if (!PRIORITIES.includes(priority)) throw invalidArgument('priority', `priority ${quote(priority)} is not one of ${PRIORITIES.join(', ')}`);
  let startAt: Date | null = existing?.startAt ?? null;
  if (input.startAt !== undefined) {
    startAt = new Date(input.startAt);
    if (Number.isNaN(startAt.getTime())) throw invalidArgument('startAt', `startAt ${quote(input.startAt)} is not an RFC 3339 date-time`);
  }
  return {
    templateId: template.id,
    name: checkName(input.name ?? existing?.name ?? ''),
    description: checkName(input.description ?? existing?.description ?? '', 'description'),
    priority,
    config: checkConfig({ ...(template.config ?? {}), ...(existing?.config ?? {}), ...(input.config ?? {}) }),
    regions: checkRegions(input.regions ?? existing?.regions),
    dataSource: checkDataSource(input.dataSource ?? existing?.dataSource ?? template.dataSource ?? DEFAULT_SOURCE, 'dataSource'),
    dataDestination: checkDataDestination(input.dataDestination ?? existing?.dataDestination ?? template.dataDestination ?? DEFAULT_DESTINATION, 'dataDestination'),
    params: checkParams(mergeParams(mergeParams(template.params ?? {}, existing?.params ?? {}), input.params ?? {})),
    appId: input.appId ?? existing?.appId ?? template.app,
    startAt,
  };
}

/** Later params win key by key within each stage, so a job can change one partitioner setting and keep the template's others. */
function mergeParams(base: JobParams, over: JobParams): JobParams {
  const merged: JobParams = { ...base, ...over };
  for (const stage of ['partitioner', 'app', 'assembler'] as const) {
    const left = base[stage];
    const right = over[stage];
    if (isPlainObject(left) && isPlainObject(right)) merged[stage] = { ...left, ...right };
  }
  return merged;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function draftOf(job: Job): JobDraft {
  return {
    templateId: job.templateId,
    name: job.name,
    description: job.description,
    priority: job.priority,
    config: job.config,
    regions: job.regions,
    dataSource: job.dataSource,
    dataDestination: job.dataDestination,
    params: job.params,
    appId: job.appId,
    startAt: job.startAt,
  };
}
