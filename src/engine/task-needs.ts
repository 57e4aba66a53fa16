import type { ComponentKind } from '../domain/manifest.js';
import { normalizeImage } from '../domain/images.js';
import { manifestImage } from '../domain/manifest.js';
import { isInProcess } from '../domain/in-process.js';
import type { Job, TaskKind } from '../domain/types.js';
import { getTemplate } from '../store/catalog.js';
import type { Queryable } from '../store/db.js';
import type { TaskNeeds } from '../store/tasks.js';
import { NO_NEEDS } from '../store/tasks.js';
import { findComponent } from './catalog.js';

// What a job's tasks need from a worker: the job's region lists and the device requirements
// of the component the task runs, and the pools that may run it (the job's account's own workers,
// and unless the job keeps to those, the shared fleet). Stored on each task so leasing matches them in SQL.

export const COMPONENT_KIND: Record<TaskKind, ComponentKind> = { partition: 'partitioner', app: 'app', assemble: 'assembler' };

export async function needsFor(db: Queryable, job: Job, kind: TaskKind): Promise<TaskNeeds> {
  const template = await getTemplate(db, job.accountId, job.templateId);
  const tag = !template ? null : kind === 'partition' ? template.partitioner : kind === 'app' ? job.appId || template.app : template.assembler;
  const component = template && tag ? await findComponent(db, job.accountId, COMPONENT_KIND[kind], tag, template.id) : null;
  const requirements = component?.manifest.deviceRequirements ?? {};
  // A built-in that runs inside the worker starts no process, whatever image its manifest names.
  const image = component && !isInProcess(component.manifest) ? manifestImage(component.manifest) : undefined;
  return {
    ...NO_NEEDS,
    minCpu: requirements.minCpu ?? 0,
    minMemoryGb: requirements.minMemory ?? 0,
    gpus: requirements.gpu && requirements.gpu.length > 0 ? requirements.gpu : null,
    regionWhitelist: job.regions.whitelist && job.regions.whitelist.length > 0 ? job.regions.whitelist : null,
    regionBlacklist: job.regions.blacklist ?? [],
    image: image ? normalizeImage(image) : null,
    accountId: job.accountId,
    privateOnly: job.config.workerPool === 'WORKER_POOL_PRIVATE',
  };
}
