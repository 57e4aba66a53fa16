import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { TesseraError, failedPrecondition, invalidArgument, notFound, quote } from '../domain/errors.js';
import type { JobState } from '../domain/job-state.js';
import type { WireLease } from '../domain/lease-wire.js';
import type { ReportedOutput, TaskLease, TaskReport } from '../domain/worker-link.js';
import { TRANSFER_CONCURRENCY } from '../domain/worker-link.js';
import { MAX_BUNDLE_BYTES, decodeBundle } from '../domain/file-bundle.js';
import { eachAtMost } from '../domain/batch.js';
import { isKnownArchive } from '../store/catalog.js';
import type { TaskOutput, WorkerOffer } from '../store/tasks.js';
import type { LeasedTask } from '../store/tasks.js';
import { confirmTaskStopped, findLease, findLeases, heartbeatTasks, listTaskOutputs, releaseOwnedTasks, releaseTasks } from '../store/tasks.js';
import { touchWorker, upsertWorker, workerKeyOf } from '../store/workers.js';
import { archiveKey } from './catalog.js';
import type { EngineDeps } from './deps.js';
import { fetchJobSource } from './job-source.js';
import { taskFileKey, uniqueResultNames } from './result-names.js';
import type { CompletionItem, TaskFlow } from './task-flow.js';
import { completionOf } from './task-flow.js';
import type { TaskKind } from '../domain/types.js';
import { heartbeatInterval } from './task-flow.js';
import { likePatterns } from '../domain/images.js';
import type { FoundKey } from '../store/accounts.js';
import type { LiveLogLines } from '../store/live-logs.js';
import { storeLiveLogs } from './live-logs.js';

// The server's side of the worker protocol (/v1/worker): the same task flow the in-process slots
// use, with every file crossing HTTP. Workers never choose blob keys: the server derives them from
// the lease, and a completion must name exactly the files uploaded under that lease.

/** A worker as it registers: its host-image patterns as its settings give them (python:*). */
export interface WorkerRegistration extends WorkerOffer {
  id: string;
  name: string;
  slots: number;
  /** What it says of its runtimes (sandbox, limits, network, container runtime, images), shown in the workers list. */
  runtime?: Record<string, unknown>;
}


/** How long a signed link handed to a worker lives: long enough for a slow download. */
const WORKER_LINK_SECONDS = 3600;

/** Output files a completion checks in the blob store at once. */
const CHECKS_AT_ONCE = 16;

/**
 * A request body read whole; RESOURCE_EXHAUSTED past `limit` bytes. The rest of a body that is
 * too large is read and dropped (so the client gets the answer, not a reset connection), up to
 * four times the limit, past which the connection is cut.
 */
async function readAtMost(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size <= limit) chunks.push(chunk as Buffer);
      else if (size > 4 * limit) body.destroy();
    }
  } catch (error) {
    // Cut above: the answer below (which may not reach the client). Anything else is a real error.
    if (size <= 4 * limit) throw error;
  }
  if (size > limit) throw new TesseraError('RESOURCE_EXHAUSTED', `the bundle is larger than ${limit} bytes`, { hint: 'send larger files one at a time (PUT /v1/worker/tasks/{taskId}/files/{index})' });
  return Buffer.concat(chunks);
}

/**
 * Every lease call needs the worker's offer, and reading it touches the worker's row: an UPDATE
 * and a commit of its own, before the lease statement. Within this long the offer read last is
 * used again, so `last_seen_at` (read in tens of seconds: connected workers, unservable tasks)
 * lags by at most this much. Registering replaces the offer at once on this server; on another
 * replica it is seen at the next touch.
 */
const TOUCH_EVERY_MS = 1000;
/** Offers kept at most (one per worker id seen lately); past it the map starts afresh. */
const MAX_OFFERS = 10_000;
/** How long the key a worker id is bound to is remembered (binding never changes but by re-registering). */
const BINDING_MS = 2000;

export function createRemoteWorkers(deps: EngineDeps, flow: TaskFlow) {
  const { db, blobs, config } = deps;
  const offers = new Map<string, { offer: WorkerOffer; at: number }>();
  const bindings = new Map<string, { keyId: string | null; at: number }>();

  /** Refused and logged: what a worker does under an identity or with a lease that is not its own. */
  function refuse(message: string, fields: Record<string, unknown>, hint: string): TesseraError {
    deps.log.warn(fields, `worker call refused: ${message}`);
    return new TesseraError('PERMISSION_DENIED', message, { hint });
  }

  /** Every presented lease token must have been minted for this worker (lease-tokens.ts). */
  function ownLeases(workerId: string, leases: { taskId: number; leaseToken: string }[]): void {
    // One token covers every lease of one lease call, so a batch of completions holds few: each is
    // checked once (an HMAC per task was a few percent of the server's CPU at 20,000 tasks/s).
    const checked = new Set<string>();
    const foreign = leases.find((lease) => {
      if (checked.has(lease.leaseToken)) return false;
      if (!deps.leaseTokens.isFor(workerId, lease.leaseToken)) return true;
      checked.add(lease.leaseToken);
      return false;
    });
    if (foreign) {
      throw refuse(`the lease on task ${foreign.taskId} was not given to worker ${quote(workerId)}`, { workerId, taskId: foreign.taskId }, 'a worker acts only on the leases it was handed');
    }
  }

  /** Marks the worker alive and returns its offer; null when it is not registered. */
  async function touch(workerId: string): Promise<WorkerOffer | null> {
    const offer = await touchWorker(db, workerId);
    if (!offer) {
      offers.delete(workerId);
      return null;
    }
    if (offers.size >= MAX_OFFERS) offers.clear();
    offers.set(workerId, { offer, at: Date.now() });
    return offer;
  }

  async function offerOf(workerId: string): Promise<WorkerOffer | null> {
    const known = offers.get(workerId);
    return known && Date.now() - known.at < TOUCH_EVERY_MS ? known.offer : touch(workerId);
  }

  async function requireLease(workerId: string, taskId: number, leaseToken: unknown): Promise<TaskLease> {
    if (typeof leaseToken !== 'string' || leaseToken.length === 0 || leaseToken.length > 100) throw invalidArgument('leaseToken', 'leaseToken is required');
    ownLeases(workerId, [{ taskId, leaseToken }]);
    const task = await findLease(db, taskId, leaseToken);
    if (!task) throw failedPrecondition(`the lease on task ${taskId} is not current (it expired, was re-leased, or the job stopped)`, 'drop the task; the server has handed it elsewhere');
    return leaseOf(task);
  }

  /** Only what the flow's functions read is needed here. */
  function leaseOf(task: LeasedTask): TaskLease {
    return { taskId: task.id, leaseToken: task.leaseToken, jobId: task.jobId, accountId: '', kind: task.kind, chunkIndex: task.chunkIndex, attempt: task.attempt, maxAttempts: task.maxAttempts, inputKey: task.inputKey, inputSize: task.inputSize, component: null, params: {}, timeoutMs: undefined };
  }

  /**
   * The outputs a completion names, each checked to be stored under the key its lease implies, with
   * its size. A partition's empty chunk may come without a blob (blob key null): nothing was
   * uploaded, and its app task's worker makes the empty file itself.
   */
  async function checkOutputs(lease: TaskLease, outputs: ReportedOutput[]): Promise<TaskOutput[]> {
    const checked: TaskOutput[] = new Array(outputs.length);
    // Several looked up at once: a partition lists thousands of chunks, and one at a time each
    // is a round trip (a HEAD request with blobs in S3).
    await eachAtMost(outputs, CHECKS_AT_ONCE, async (output, index) => {
      // No key is made for it: a partition of 100,000 empty chunks would hold 100,000 of them.
      if (output.blobKey === null && lease.kind === 'partition') {
        checked[index] = { name: output.name, blobKey: null, size: 0 };
        return;
      }
      const expected = taskFileKey(lease, index, output.name);
      const upload = 'upload each file first (PUT /v1/worker/tasks/{taskId}/files/{index})';
      if (output.blobKey === null) throw invalidArgument(`outputs[${index}].blobKey`, `output ${quote(output.name)} has no blob key: only a partition's empty chunks may be left out of the upload`, upload);
      const stored = output.blobKey === expected ? await blobs.stat(expected) : null;
      if (!stored) throw invalidArgument(`outputs[${index}]`, `output ${quote(output.name)} was not uploaded under this lease as file ${index}`, upload);
      checked[index] = { name: output.name, blobKey: expected, size: stored.size };
    });
    return checked;
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
    /**
     * Registers a worker under the token it presented: its id is bound to that token from now on.
     * A token of the operator's makes a shared worker; a customer account's, a worker of that
     * account's own pool.
     */
    async register(worker: WorkerRegistration, key: FoundKey): Promise<{ workerId: string; leaseSeconds: number; heartbeatMs: number; pool: string }> {
      const accountId = key.role === 'operator' ? null : key.accountId;
      if (!(await upsertWorker(db, { ...worker, keyId: key.id, accountId, hostImages: likePatterns(worker.hostImages) }))) {
        throw refuse(`worker id ${quote(worker.id)} is registered with another token`, { workerId: worker.id, keyId: key.id }, 'each worker registers under an id of its own (tessera worker picks a new one at every start)');
      }
      offers.delete(worker.id);
      bindings.set(worker.id, { keyId: key.id, at: Date.now() });
      return { workerId: worker.id, leaseSeconds: config.leaseSeconds, heartbeatMs: heartbeatInterval(config), pool: accountId === null ? 'shared' : `account ${accountId}` };
    },

    /**
     * Checks that a worker id is registered under the key presenting it: every call but
     * registration names its worker (the X-Tessera-Worker header), and acts as that worker only.
     */
    async identify(workerId: string, keyId: string): Promise<void> {
      let known = bindings.get(workerId);
      if (!known || Date.now() - known.at >= BINDING_MS) {
        known = { keyId: await workerKeyOf(db, workerId), at: Date.now() };
        if (bindings.size >= MAX_OFFERS) bindings.clear();
        bindings.set(workerId, known);
      }
      if (known.keyId === null) throw new TesseraError('NOT_FOUND', `worker ${quote(workerId)} is not registered`, { hint: 'register again (POST /v1/worker/register)' });
      if (known.keyId !== keyId) throw refuse(`worker ${quote(workerId)} is registered with another token`, { workerId, keyId }, 'a worker calls with the token it registered with');
    },

    async lease(workerId: string, max: number, waitMs: number, baseUrl: string, signal: AbortSignal): Promise<WireLease[]> {
      const offer = await offerOf(workerId);
      if (!offer) throw new TesseraError('NOT_FOUND', `worker ${quote(workerId)} is not registered`, { hint: 'register again (POST /v1/worker/register)' });
      const leases = await flow.leaseWaiting({ id: workerId, ...offer }, max, waitMs, signal);
      // The worker hung up while the lease statement ran (it is stopping, or was killed): nobody
      // will read these leases, so they go back to the queue now instead of at their expiry.
      if (signal.aborted && leases.length > 0) {
        await releaseTasks(db, leases);
        return [];
      }
      // An empty chunk is made by the worker: no link to sign. Only the leases that need one wait
      // for it (a call's thousand empty chunks make no promise each). The leases were made for
      // this call alone, so each gets its link in place rather than being copied whole.
      const wire = leases as WireLease[];
      for (const lease of wire) lease.inputUrl = null;
      await Promise.all(wire.filter((lease) => lease.inputKey && lease.inputSize !== 0).map(async (lease) => void (lease.inputUrl = await readLink(baseUrl, lease.inputKey!))));
      return wire;
    },

    async heartbeat(workerId: string, leases: { taskId: number; leaseToken: string }[]): Promise<number[]> {
      ownLeases(workerId, leases);
      await touch(workerId);
      return heartbeatTasks(db, leases.map((lease) => ({ id: lease.taskId, leaseToken: lease.leaseToken })), config.leaseSeconds);
    },

    async enterStage(workerId: string, taskId: number, leaseToken: unknown, state: JobState): Promise<void> {
      await flow.enterStage(await requireLease(workerId, taskId, leaseToken), state);
    },

    /** The partition task's input: fetched by the server (its URL rules apply), streamed on. */
    async openSource(workerId: string, taskId: number, leaseToken: unknown): Promise<{ name: string; stream: Readable; cleanup: () => Promise<void> }> {
      const lease = await requireLease(workerId, taskId, leaseToken);
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
    async resultLinks(workerId: string, taskId: number, leaseToken: unknown, baseUrl: string): Promise<{ name: string; url: string }[]> {
      const lease = await requireLease(workerId, taskId, leaseToken);
      const files = uniqueResultNames(await listTaskOutputs(db, lease.jobId, 'app'));
      return Promise.all(files.map(async (file) => ({ name: file.name, url: await readLink(baseUrl, file.blobKey) })));
    },

    /** One output file of a task, streamed into the blob store under the key its lease implies. */
    async upload(workerId: string, taskId: number, leaseToken: unknown, index: number, name: string, body: Readable): Promise<TaskOutput> {
      const lease = await requireLease(workerId, taskId, leaseToken);
      checkOutputFile(index, name);
      const stored = await blobs.putStream(taskFileKey(lease, index, name), body, config.maxSourceBytes);
      return { name, blobKey: stored.key, size: stored.size };
    },

    /**
     * Many small output files of a task in one body (see domain/file-bundle.ts), each stored under
     * the key its lease implies, as the single upload does. The body is read whole, up to
     * MAX_BUNDLE_BYTES; a broken frame refuses the bundle before anything is stored.
     */
    async uploadBundle(workerId: string, taskId: number, leaseToken: unknown, body: Readable): Promise<{ index: number; blobKey: string }[]> {
      const lease = await requireLease(workerId, taskId, leaseToken);
      const files = decodeBundle(await readAtMost(body, MAX_BUNDLE_BYTES));
      for (const file of files) checkOutputFile(file.index, file.name);
      const stored: { index: number; blobKey: string }[] = new Array(files.length);
      await eachAtMost(files, TRANSFER_CONCURRENCY, async (file, position) => {
        const blob = await blobs.putStream(taskFileKey(lease, file.index, file.name), Readable.from([file.bytes]), config.maxSourceBytes);
        stored[position] = { index: file.index, blobKey: blob.key };
      });
      return stored;
    },

    /**
     * Presigned PUT URLs for a task's output files, when blobs are in S3: the worker uploads
     * straight into the bucket under the keys its lease implies. Null with local blobs (the worker
     * then PUTs each file here). The completion checks every file arrived.
     */
    async uploadLinks(workerId: string, taskId: number, leaseToken: unknown, files: { index: number; name: string }[]): Promise<{ index: number; blobKey: string; url: string }[] | null> {
      const lease = await requireLease(workerId, taskId, leaseToken);
      if (!blobs.presign) return null;
      const presign = blobs.presign.bind(blobs);
      return Promise.all(files.map(async ({ index, name }) => {
        checkOutputFile(index, name);
        const blobKey = taskFileKey(lease, index, name);
        return { index, blobKey, url: await presign(blobKey, 'PUT', WORKER_LINK_SECONDS) };
      }));
    },

    /** Fenced completion; every output must be a file uploaded under this very lease. */
    async complete(workerId: string, taskId: number, leaseToken: unknown, outputs: ReportedOutput[], report: TaskReport): Promise<boolean> {
      const lease = await requireLease(workerId, taskId, leaseToken);
      return flow.recordCompletion(lease, await checkOutputs(lease, outputs), report);
    },

    /**
     * Many completions in one call (a worker's slots finishing together), recorded in one
     * transaction. Each gets its own answer: completed, not (its lease is no longer current), or
     * an error for that completion alone (an output that was never uploaded).
     */
    async completeMany(workerId: string, completions: { taskId: number; leaseToken: string; kind?: TaskKind; outputs: ReportedOutput[]; report: TaskReport }[]): Promise<{ completed: boolean; error?: string }[]> {
      ownLeases(workerId, completions);
      const answers: { completed: boolean; error?: string }[] = completions.map(() => ({ completed: false }));
      const accepted: { index: number; item: CompletionItem }[] = [];
      // App tasks without files, the many, need no lookup: the fenced update checks the lease
      // and the kind. The others' files are checked against the keys their lease implies.
      const lookUp = completions.filter((completion) => completion.kind !== 'app' || completion.outputs.length > 0);
      const current = await findLeases(db, lookUp);
      for (const [index, completion] of completions.entries()) {
        const { taskId, leaseToken, outputs, report } = completion;
        if (completion.kind === 'app' && outputs.length === 0) {
          accepted.push({ index, item: { kind: 'app', taskId, leaseToken, outputs: [], report } });
          continue;
        }
        const task = current.get(taskId);
        if (!task || task.leaseToken !== leaseToken) continue;
        const lease = leaseOf(task);
        try {
          accepted.push({ index, item: completionOf(lease, await checkOutputs(lease, outputs), report) });
        } catch (error) {
          answers[index] = { completed: false, error: error instanceof Error ? error.message : String(error) };
        }
      }
      const completed = await flow.recordCompletions(accepted.map((entry) => entry.item));
      for (const [position, entry] of accepted.entries()) answers[entry.index] = { completed: completed[position]! };
      return answers;
    },

    /** Leases a stopping worker never started, and with `everything` all it still holds: queued again at once. */
    async release(workerId: string, leases: { taskId: number; leaseToken: string }[], everything: boolean): Promise<number> {
      ownLeases(workerId, leases);
      await touch(workerId);
      const released = await releaseTasks(db, leases);
      return released + (everything ? await releaseOwnedTasks(db, workerId) : 0);
    },

    async fail(workerId: string, taskId: number, leaseToken: unknown, error: string, retry: boolean, report: TaskReport, lost = false): Promise<void> {
      await flow.recordFailure(await requireLease(workerId, taskId, leaseToken), error.slice(0, 8000), retry, report, lost);
    },

    /** A component archive by content hash, for workers to cache; only archives of registered components. */
    async openComponent(sha256: string): Promise<{ stream: Readable; size: number }> {
      if (!/^[0-9a-f]{64}$/.test(sha256) || !(await isKnownArchive(db, sha256))) throw notFound('component archive', sha256);
      return blobs.openRead(archiveKey(sha256));
    },

    /** Lines of this worker's running attempts; answers the task ids whose lease is not current. */
    async appendLogs(workerId: string, batches: LiveLogLines[]): Promise<number[]> {
      ownLeases(workerId, batches);
      return storeLiveLogs(deps, batches);
    },

    async stopped(workerId: string, taskId: number, leaseToken: string): Promise<void> {
      ownLeases(workerId, [{ taskId, leaseToken }]);
      await confirmTaskStopped(db, taskId, leaseToken);
    },
  };
}

export type RemoteWorkers = ReturnType<typeof createRemoteWorkers>;
