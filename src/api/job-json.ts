import type { JobState } from '../domain/job-state.js';
import type { Job, Template } from '../domain/types.js';

// Jobs and templates as the seed's JSON (jobJob, jobJobTemplate): its field names, its enums,
// date-times in RFC 3339, int64 fields as the seed declares them.

export function templateJson(template: Template) {
  return {
    id: template.id,
    owner: template.owner,
    description: template.description,
    app: template.app,
    partitioner: template.partitioner,
    assembler: template.assembler,
  };
}

function iso(date: Date | null | undefined): string | undefined {
  return date ? date.toISOString() : undefined;
}

/** Seconds the job has run: from submission to its end, or to now while it runs. */
function durationSeconds(job: Job, now: number): number {
  if (!job.submittedAt) return 0;
  const end = job.endedAt ? job.endedAt.getTime() : now;
  return Math.max(0, (end - job.submittedAt.getTime()) / 1000);
}

/**
 * Resource accounting: units are vCPU·GiB·hours (each attempt's CPU hours times its peak memory in
 * GiB, summed); numUnitsEstimation is that rounded up to a whole unit (the seed makes it an int64),
 * paymentAmount the exact units times the configured price per unit (TESSERA_PRICE_PER_UNIT).
 */
export function usageJson(job: Job, pricePerUnit: number) {
  return {
    paymentAmount: Number((job.usage.units * pricePerUnit).toFixed(8)),
    numUnitsEstimation: String(Math.ceil(job.usage.units)),
    usage: {
      cpuSeconds: Number(job.usage.cpuSeconds.toFixed(3)),
      wallSeconds: Number(job.usage.wallSeconds.toFixed(3)),
      peakMemoryBytes: String(job.usage.peakMemoryBytes),
      units: job.usage.units,
      pricePerUnit,
      tasksDone: job.chunksDone,
      tasksFailed: job.attemptsFailed,
      tasksTotal: job.numChunks ?? 0,
    },
  };
}

export function jobJson(job: Job, template: Template | null, pricePerUnit: number, now = Date.now()) {
  const stateTimestamps: Partial<Record<JobState, string>> = {};
  for (const [state, at] of Object.entries(job.stateTimestamps)) stateTimestamps[state as JobState] = at.toISOString();
  return {
    id: job.id,
    templateId: job.templateId,
    name: job.name,
    description: job.description,
    config: job.config,
    priority: job.priority,
    regions: { blacklist: job.regions.blacklist ?? [], whitelist: job.regions.whitelist ?? [] },
    state: job.state,
    dataSource: job.dataSource,
    dataDestination: job.dataDestination,
    params: job.params,
    appId: job.appId,
    createdAt: job.createdAt.toISOString(),
    startAt: iso(job.startAt),
    submittedAt: iso(job.submittedAt),
    startedAt: iso(job.startedAt),
    endedAt: iso(job.endedAt),
    deletedAt: iso(job.deletedAt),
    stateTimestamps,
    duration: durationSeconds(job, now),
    ...usageJson(job, pricePerUnit),
    numChunks: job.numChunks ?? 0,
    errorMessage: job.errorMessage ?? '',
    ...(template ? { templateInfo: templateJson(template) } : {}),
  };
}

export function paginationJson(total: number, offset: number, returned: number) {
  return { total, offset, hasPrevious: offset > 0, hasNext: offset + returned < total };
}
