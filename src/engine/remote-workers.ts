import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { TesseraError, failedPrecondition, invalidArgument, notFound, quote } from '../domain/errors.js';
import type { JobState } from '../domain/job-state.js';
import type { TaskLease, TaskReport } from '../domain/worker-link.js';
import { isKnownArchive } from '../store/catalog.js';
import type { TaskOutput, WorkerOffer } from '../store/tasks.js';
import { confirmTaskStopped, findLease, heartbeatTasks, listTaskOutputs } from '../store/tasks.js';
import { touchWorker, upsertWorker } from '../store/workers.js';
import { archiveKey } from './catalog.js';
import type { EngineDeps } from './deps.js';
import { fetchJobSource } from './job-source.js';
import { taskFileKey, uniqueResultNames } from './result-names.js';
import type { TaskFlow } from './task-flow.js';
import { heartbeatInterval } from './task-flow.js';

// The server's side of the worker protocol (/v1/worker): the same task flow the in-process slots
// use, with every file crossing HTTP. Workers never choose blob keys: the server derives them from
// the lease, and a completion must name exactly the files uploaded under that lease.

export interface WorkerRegistration extends WorkerOffer {
  id: string;
  name: string;
  slots: number;
}

/** A lease as sent to a remote worker: the TaskLease plus where to fetch the chunk. */
export interface WireLease extends TaskLease {
  inputUrl: string | null;
}

/** How long a signed link handed to a worker lives: long enough for a slow download. */
const WORKER_LINK_SECONDS = 3600;

export function createRemoteWorkers(deps: EngineDeps, flow: TaskFlow) {
  const { db, blobs, config } = deps;

  async function requireLease(taskId: number, leaseToken: unknown): Promise<TaskLease> {
    if (typeof leaseToken !== 'string' || leaseToken.length === 0 || leaseToken.length > 100) throw invalidArgument('leaseToken', 'leaseToken is required');
    const task = await findLease(db, taskId, leaseToken);
    if (!task) throw failedPrecondition(`the lease on task ${taskId} is not current (it expired, was re-leased, or the job stopped)`, 'drop the task; the server has handed it elsewhere');
    // Only what the flow's functions read is needed here.
    return { taskId: task.id, leaseToken, jobId: task.jobId, accountId: '', kind: task.kind, chunkIndex: task.chunkIndex, attempt: task.attempt, maxAttempts: task.maxAttempts, inputKey: task.inputKey, component: null, params: {}, timeoutMs: undefined };
  }

  /** Where a worker reads a blob: a presigned bucket URL when blobs are in S3 (the bytes skip the API servers), else a signed link here. */
  async function readLink(baseUrl: string, key: string): Promise<string> {
    if (blobs.presign) return blobs.presign(key, 'GET', WORKER_LINK_SECONDS);
    const { expires, signature } = deps.signer.sign(key, WORKER_LINK_SECONDS);
    return `${baseUrl}/v1/files/${key.split('/').map(encodeURIComponent).join('/')}?expires=${expires}&signature=${signature}`;
  }

  function checkOutputFile(index: number, name: string): void {
    if (!Number.isSafeInteger(index) || index < 0 || index > 1_000_000) throw invalidArgument('index', `file index ${quote(index)} must be from 0 to 1000000`);
    if (name.length === 0 || name.length > 1024 || name.includes('\u0000')) throw invalidArgument('name', `file name ${quote(name)} must be 1-1024 characters`);
  }

  return {
    async register(worker: WorkerRegistration): Promise<{ workerId: string; leaseSeconds: number; heartbeatMs: number }> {
      await upsertWorker(db, worker);
      return { workerId: worker.id, leaseSeconds: config.leaseSeconds, heartbeatMs: heartbeatInterval(config) };
    },

    async lease(workerId: string, max: number, waitMs: number, baseUrl: string, signal: AbortSignal): Promise<WireLease[]> {
      const offer = await touchWorker(db, workerId);
      if (!offer) throw new TesseraError('NOT_FOUND', `worker ${quote(workerId)} is not registered`, { hint: 'register again (POST /v1/worker/register)' });
      const leases = await flow.leaseWaiting({ id: workerId, ...offer }, max, waitMs, signal);
      return Promise.all(leases.map(async (lease) => ({ ...lease, inputUrl: lease.inputKey ? await readLink(baseUrl, lease.inputKey) : null })));
    },

    async heartbeat(workerId: string, leases: { taskId: number; leaseToken: string }[]): Promise<number[]> {
      await touchWorker(db, workerId);
      return heartbeatTasks(db, leases.map((lease) => ({ id: lease.taskId, leaseToken: lease.leaseToken })), config.leaseSeconds);
    },

    async enterStage(taskId: number, leaseToken: unknown, state: JobState): Promise<void> {
      await flow.enterStage(await requireLease(taskId, leaseToken), state);
    },

    /** The partition task's input: fetched by the server (its URL rules apply), streamed on. */
    async openSource(taskId: number, leaseToken: unknown): Promise<{ name: string; stream: Readable; cleanup: () => Promise<void> }> {
      const lease = await requireLease(taskId, leaseToken);
      const folder = await mkdtemp(path.join(tmpdir(), 'tessera-source-'));
      try {
        const file = await fetchJobSource(deps, lease.jobId, folder);
        return { name: path.basename(file), stream: createReadStream(file), cleanup: () => rm(folder, { recursive: true, force: true }) };
      } catch (error) {
        await rm(folder, { recursive: true, force: true });
        throw error;
      }
    },

    /** The assemble task's inputs: every app result, names made unique, as signed links. */
    async resultLinks(taskId: number, leaseToken: unknown, baseUrl: string): Promise<{ name: string; url: string }[]> {
      const lease = await requireLease(taskId, leaseToken);
      const files = uniqueResultNames(await listTaskOutputs(db, lease.jobId, 'app'));
      return Promise.all(files.map(async (file) => ({ name: file.name, url: await readLink(baseUrl, file.blobKey) })));
    },

    /** One output file of a task, streamed into the blob store under the key its lease implies. */
    async upload(taskId: number, leaseToken: unknown, index: number, name: string, body: Readable): Promise<TaskOutput> {
      const lease = await requireLease(taskId, leaseToken);
      checkOutputFile(index, name);
      const stored = await blobs.putStream(taskFileKey(lease, index, name), body, config.maxSourceBytes);
      return { name, blobKey: stored.key, size: stored.size };
    },

    /**
     * Presigned PUT URLs for a task's output files, when blobs are in S3: the worker uploads
     * straight into the bucket under the keys its lease implies. Null with local blobs (the worker
     * then PUTs each file here). The completion checks every file arrived.
     */
    async uploadLinks(taskId: number, leaseToken: unknown, files: { index: number; name: string }[]): Promise<{ index: number; blobKey: string; url: string }[] | null> {
      const lease = await requireLease(taskId, leaseToken);
      if (!blobs.presign) return null;
      const presign = blobs.presign.bind(blobs);
      return Promise.all(files.map(async ({ index, name }) => {
        checkOutputFile(index, name);
        const blobKey = taskFileKey(lease, index, name);
        return { index, blobKey, url: await presign(blobKey, 'PUT', WORKER_LINK_SECONDS) };
      }));
    },

    /** Fenced completion; every output must be a file uploaded under this very lease. */
    async complete(taskId: number, leaseToken: unknown, outputs: TaskOutput[], report: TaskReport): Promise<boolean> {
      const lease = await requireLease(taskId, leaseToken);
      for (const [index, output] of outputs.entries()) {
        const expected = taskFileKey(lease, index, output.name);
        const stored = output.blobKey === expected ? await blobs.stat(expected) : null;
        if (!stored) throw invalidArgument(`outputs[${index}]`, `output ${quote(output.name)} was not uploaded under this lease as file ${index}`, 'upload each file first (PUT /v1/worker/tasks/{taskId}/files/{index})');
        output.size = stored.size;
      }
      return flow.recordCompletion(lease, outputs, report);
    },

    async fail(taskId: number, leaseToken: unknown, error: string, retry: boolean, report: TaskReport): Promise<void> {
      await flow.recordFailure(await requireLease(taskId, leaseToken), error.slice(0, 8000), retry, report);
    },

    /** A component archive by content hash, for workers to cache; only archives of registered components. */
    async openComponent(sha256: string): Promise<{ stream: Readable; size: number }> {
      if (!/^[0-9a-f]{64}$/.test(sha256) || !(await isKnownArchive(db, sha256))) throw notFound('component archive', sha256);
      return blobs.openRead(archiveKey(sha256));
    },

    async stopped(taskId: number, leaseToken: string): Promise<void> {
      await confirmTaskStopped(db, taskId, leaseToken);
    },
  };
}

export type RemoteWorkers = ReturnType<typeof createRemoteWorkers>;
