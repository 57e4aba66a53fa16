import { randomUUID } from 'node:crypto';
import { availableParallelism, hostname, totalmem } from 'node:os';

// What this machine offers to tasks: cores and memory measured here, region and GPU models as
// configured. Matched against an app's device_requirements when leasing.

export interface MachineOffer {
  region: string;
  cpus: number;
  memoryGb: number;
  gpus: string[];
}

export function machineOffer(settings: { workerRegion: string; workerGpus: string[] }): MachineOffer {
  return { region: settings.workerRegion, cpus: availableParallelism(), memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10, gpus: settings.workerGpus };
}

/** A worker id unique per process start, readable in logs: host, pid and a random suffix. */
export function newWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
}
