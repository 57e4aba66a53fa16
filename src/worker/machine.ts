import { randomUUID } from 'node:crypto';
import { availableParallelism, hostname, totalmem } from 'node:os';
import type { RuntimeDescription } from '../runner/runtime.js';

// What this machine offers to tasks: cores and memory measured here, region and GPU models as
// configured, and what its runtimes run (a container runtime runs any image; host-image patterns
// name images its host sandbox runs instead). Matched against a task's needs when leasing.

export interface MachineOffer {
  region: string;
  cpus: number;
  memoryGb: number;
  gpus: string[];
  containers: boolean;
  /** Host-image patterns, as TESSERA_HOST_IMAGES gives them (python:*). */
  hostImages: string[];
  runtime: RuntimeDescription;
}

export function machineOffer(settings: { workerRegion: string; workerGpus: string[] }, runtime: RuntimeDescription): MachineOffer {
  return {
    region: settings.workerRegion,
    cpus: availableParallelism(),
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    gpus: settings.workerGpus,
    containers: runtime.containers !== null,
    hostImages: runtime.hostImages,
    runtime,
  };
}

/** The start line's account of a worker's runtimes. */
export function describeRuntime(runtime: RuntimeDescription): string {
  const containers = runtime.containers ? `${runtime.containers} (${runtime.images.length} image${runtime.images.length === 1 ? '' : 's'} here)` : 'none';
  return `tasks run in: sandbox ${runtime.sandbox}; limits ${runtime.limits}; network ${runtime.network}; containers ${containers}; host images ${runtime.hostImages.join(', ') || 'none'}`;
}

/** A worker id unique per process start, readable in logs: host, pid and a random suffix. */
export function newWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
}
