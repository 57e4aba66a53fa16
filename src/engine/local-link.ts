import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TesseraError, quote } from '../domain/errors.js';
import type { OutputFile, WorkerLink } from '../domain/worker-link.js';
import { fetchUrlToFolder } from '../sources/url.js';
import { getJobForEngine } from '../store/jobs.js';
import type { TaskOutput, WorkerOffer } from '../store/tasks.js';
import { touchWorker, upsertWorker } from '../store/workers.js';
import { confirmTaskStopped, heartbeatTasks, listTaskOutputs } from '../store/tasks.js';
import type { EngineDeps } from './deps.js';
import { taskFileKey, uniqueResultNames } from './result-names.js';
import type { TaskFlow } from './task-flow.js';

// The worker link for slots running inside the server process (embedded mode): the same task
// flow a remote worker reaches over HTTP, with files moved straight between disk and blob store.

/** How often an idle slot looks for work even without a wake-up (tasks queued by another replica). */
const IDLE_POLL_MS = 500;

export function createLocalLink(deps: EngineDeps, flow: TaskFlow, worker: { id: string; name: string; slots: number } & WorkerOffer): WorkerLink {
  const { db, blobs, config } = deps;
  // Registered on first use, so the worker shows as connected and its offer is on record.
  let registered: Promise<void> | undefined;
  const register = () => (registered ??= upsertWorker(db, worker));

  async function waitForTasks(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), ms);
    const stop = () => controller.abort();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      await once(deps.signals, 'tasks', { signal: controller.signal });
    } catch {
      // Timed out or stopped: the caller polls again or returns.
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
    }
  }

  return {
    async lease(max, waitMs, signal) {
      await register();
      const deadline = Date.now() + waitMs;
      for (;;) {
        const leases = await flow.lease(worker.id, max, worker);
        const remaining = deadline - Date.now();
        if (leases.length > 0 || remaining <= 0 || signal?.aborted) return leases;
        await waitForTasks(Math.min(remaining, IDLE_POLL_MS), signal);
      }
    },

    async heartbeat(leases) {
      await touchWorker(db, worker.id);
      return heartbeatTasks(db, leases.map((lease) => ({ id: lease.taskId, leaseToken: lease.leaseToken })), config.leaseSeconds);
    },

    enterStage: (lease, state) => flow.enterStage(lease, state),

    async fetchSource(lease, folder) {
      const job = await getJobForEngine(db, lease.jobId);
      if (!job) throw new TesseraError('NOT_FOUND', `job ${lease.jobId} no longer exists`);
      const source = job.dataSource;
      switch (source.dataSourceDescriptor) {
        case 'bypass':
          // A fan-out partitioner ("replicate N times") still needs something to read.
          await writeFile(path.join(folder, 'input'), '');
          return;
        case 'url':
          await fetchUrlToFolder(String(source.params?.url), folder, {
            allowPrivate: config.allowPrivateUrls,
            maxBytes: config.maxSourceBytes,
            timeoutMs: config.urlTimeoutMs,
          });
          return;
        default:
          throw new TesseraError('FAILED_PRECONDITION', `data source ${quote(source.dataSourceDescriptor)} is not supported`);
      }
    },

    async fetchChunk(lease, filePath) {
      if (!lease.inputKey) throw new TesseraError('INTERNAL', `task ${lease.taskId} has no chunk`);
      await blobs.getFile(lease.inputKey, filePath);
    },

    async fetchResults(lease, folder) {
      const files = uniqueResultNames(await listTaskOutputs(db, lease.jobId, 'app'));
      for (const file of files) await blobs.getFile(file.blobKey, path.join(folder, file.name));
    },

    async complete(lease, files: OutputFile[]) {
      const outputs: TaskOutput[] = [];
      for (const [index, file] of files.entries()) {
        const stored = await blobs.putFile(taskFileKey(lease, index, file.name), file.path);
        outputs.push({ name: file.name, blobKey: stored.key, size: stored.size });
      }
      const completed = await flow.recordCompletion(lease, outputs);
      // A late worker's files are orphans: its attempt-scoped keys are referenced by nobody.
      if (!completed) await Promise.all(outputs.map((output) => blobs.deletePrefix(output.blobKey)));
      return completed;
    },

    fail: (lease, error, retry) => flow.recordFailure(lease, error, retry),

    async stopped(lease) {
      await confirmTaskStopped(db, lease.taskId, lease.leaseToken);
    },

    onJobStopped(listener) {
      deps.signals.on('job-stopped', listener);
      return () => deps.signals.off('job-stopped', listener);
    },
  };
}
