import path from 'node:path';
import { TesseraError, quote } from '../domain/errors.js';
import type { OutputFile, WorkerLink } from '../domain/worker-link.js';
import { COMPLETION_BATCH, TRANSFER_CONCURRENCY } from '../domain/worker-link.js';
import type { TaskOutput, WorkerOffer } from '../store/tasks.js';
import { touchWorker, upsertWorker } from '../store/workers.js';
import { confirmTaskStopped, heartbeatTasks, listTaskOutputs, releaseOwnedTasks, releaseTasks } from '../store/tasks.js';
import type { EngineDeps } from './deps.js';
import { archiveKey } from './catalog.js';
import { fetchJobSource } from './job-source.js';
import { taskFileKey, uniqueResultNames } from './result-names.js';
import type { CompletionItem, TaskFlow } from './task-flow.js';
import { completionOf } from './task-flow.js';
import { createBatcher, eachAtMost } from '../domain/batch.js';
import { storeLiveLogs } from './live-logs.js';

// The worker link for slots running inside the server process (embedded mode): the same task
// flow a remote worker reaches over HTTP, with files moved straight between disk and blob store.

export function createLocalLink(deps: EngineDeps, flow: TaskFlow, worker: { id: string; name: string; slots: number; runtime?: unknown } & WorkerOffer): WorkerLink {
  const { db, blobs, config } = deps;
  // Registered on first use, so the worker shows as connected and its offer is on record.
  let registered: Promise<void> | undefined;
  const register = () => (registered ??= upsertWorker(db, { ...worker, keyId: null }).then(() => undefined));
  let lastTouched = 0;
  // Slots finishing while a completion is being recorded are recorded together in the next transaction.
  const recordCompletion = createBatcher<CompletionItem, boolean>((items) => flow.recordCompletions(items), COMPLETION_BATCH);

  return {
    async lease(max, waitMs, signal) {
      await register();
      // Idle slots count as connected too (the unserved-job check looks at last_seen_at): once a
      // second is plenty for that, whatever the number of slots and leases.
      if (Date.now() - lastTouched >= 1000) {
        lastTouched = Date.now();
        await touchWorker(db, worker.id);
      }
      return flow.leaseWaiting(worker, max, waitMs, signal);
    },

    async heartbeat(leases) {
      await touchWorker(db, worker.id);
      return heartbeatTasks(db, leases.map((lease) => ({ id: lease.taskId, leaseToken: lease.leaseToken })), config.leaseSeconds);
    },

    enterStage: (lease, state) => flow.enterStage(lease, state),

    async fetchSource(lease, folder) {
      await fetchJobSource(deps, lease.jobId, folder);
    },

    async fetchChunk(lease, filePath) {
      if (!lease.inputKey) throw new TesseraError('INTERNAL', `task ${lease.taskId} has no chunk`);
      await blobs.getFile(lease.inputKey, filePath);
    },

    async fetchResults(lease, folder) {
      const files = uniqueResultNames(await listTaskOutputs(db, lease.jobId, 'app'));
      await eachAtMost(files, TRANSFER_CONCURRENCY, (file) => blobs.getFile(file.blobKey, path.join(folder, file.name)));
    },

    async release(leases, everything) {
      await releaseTasks(db, leases);
      if (everything) await releaseOwnedTasks(db, worker.id);
    },

    async complete(lease, files: OutputFile[], report) {
      const outputs: TaskOutput[] = new Array(files.length);
      // An in-process partitioner's empty chunk has no file, and gets no blob, no key and no
      // promise: a 100,000-chunk partition otherwise held 100,000 key strings (about 10 MB) while
      // its tasks were queued, and V8 sized the heap for the rest of the job from that peak.
      const onDisk: number[] = [];
      for (let index = 0; index < files.length; index++) {
        const file = files[index]!;
        if (file.path !== null) onDisk.push(index);
        else if (lease.kind === 'partition') outputs[index] = { name: file.name, blobKey: null, size: 0 };
        else throw new TesseraError('INTERNAL', `the ${lease.kind} task ${lease.taskId} produced ${quote(file.name)} without a file`);
      }
      await eachAtMost(onDisk, TRANSFER_CONCURRENCY, async (index) => {
        const { name, path: filePath } = files[index]!;
        const stored = await blobs.moveFile(taskFileKey(lease, index, name), filePath!);
        outputs[index] = { name, blobKey: stored.key, size: stored.size };
      });
      const completed = await recordCompletion(completionOf(lease, outputs, report));
      // A late worker's files are orphans: its attempt-scoped keys are referenced by nobody.
      if (!completed) await Promise.all(outputs.map((output) => output.blobKey !== null && blobs.deletePrefix(output.blobKey)));
      return completed;
    },

    fail: (lease, error, retry, report, lost) => flow.recordFailure(lease, error, retry, report, lost),

    async fetchComponent(sha256, filePath) {
      await blobs.getFile(archiveKey(sha256), filePath);
    },

    appendLogs: (batches) => storeLiveLogs(deps, batches.map(({ lease, lines }) => ({ taskId: lease.taskId, leaseToken: lease.leaseToken, lines }))),

    async stopped(lease) {
      await confirmTaskStopped(db, lease.taskId, lease.leaseToken);
    },

    onJobStopped(listener) {
      deps.signals.on('job-stopped', listener);
      return () => deps.signals.off('job-stopped', listener);
    },
  };
}
