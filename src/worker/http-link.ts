import { createReadStream, createWriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TesseraError, quote } from '../domain/errors.js';
import type { JobState } from '../domain/job-state.js';
import type { Log } from '../domain/log.js';
import type { OutputFile, ReportedOutput, TaskLease, TaskReport, WorkerLink } from '../domain/worker-link.js';
import { COMPLETION_BATCH, MAX_LEASE_BATCH, TRANSFER_CONCURRENCY } from '../domain/worker-link.js';
import { createBatcher, eachAtMost } from '../domain/batch.js';
import { encodeBundle } from '../domain/file-bundle.js';
import type { CompactLeases, WireLease } from '../domain/lease-wire.js';
import { expandLeases } from '../domain/lease-wire.js';
import { retryDelay, retryable, sleep } from './backoff.js';
import type { MachineOffer } from './machine.js';

// A worker agent's link to Tessera servers over HTTP (the /v1/worker protocol). Several server
// URLs may be given: when one stops answering the link moves on to the next, so a replica going
// down costs its workers one failed call, not their work.

export interface HttpLinkOptions {
  servers: string[];
  token: string;
  worker: { id: string; name: string; slots: number } & MachineOffer;
  log: Log;
}

/** Upload links asked for in one request (the server takes at most 10,000). */
const UPLOAD_LINKS_PER_REQUEST = 5000;

/** Files at most this large, and at most this many or this many bytes together, go up in one request (domain/file-bundle.ts). */
const BUNDLE_FILE_BYTES = 256 * 1024;
const BUNDLE_FILES = 256;
const BUNDLE_BYTES = 2 * 1024 * 1024;

/** S3 takes at most 5 GiB in one PUT; larger files go through the server, which uploads them in parts. */
const MAX_DIRECT_PUT_BYTES = 5 * 1024 ** 3;

/**
 * A failed transfer to or from a link, worded for a person: S3's XML error (Code, Message) is
 * read, and an expired link says so instead of a bare HTTP 403. The link's query (its signature)
 * is never repeated.
 */
export async function transferError(response: Response, doing: string, url: string): Promise<TesseraError> {
  const where = url.split('?')[0];
  const text = (await response.text().catch(() => '')).slice(0, 4096);
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? (/"message"\s*:\s*"([^"]*)"/.exec(text)?.[1]);
  const said = code || message ? ` (${[code, message].filter(Boolean).join(': ')})` : '';
  if (response.status === 403 && /expired/i.test(`${code} ${message}`)) {
    return new TesseraError('DEADLINE_EXCEEDED', `${doing} ${where}: the link expired${said}`, { hint: 'the task took longer than its links last; it is retried with fresh links' });
  }
  return new TesseraError('UNAVAILABLE', `${doing} ${where} answered HTTP ${response.status}${said}`);
}

/** An output file on the disk, with its place in the task's list. */
interface DiskFile {
  name: string;
  path: string;
  index: number;
}

/** Connections kept open between the worker's JSON calls, one pool per scheme. */
const AGENTS = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

/** How long a report of finished work is retried while the servers are away (see patiently). */
const REPORT_PATIENCE_MS = 5 * 60_000;

/** The error code of an HTTP status from a server: 5xx (and no answer) is passing, 4xx a refusal. */
function codeOfStatus(status: number): TesseraError['code'] {
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 429) return 'RESOURCE_EXHAUSTED';
  if (status >= 400 && status < 500) return 'FAILED_PRECONDITION';
  return 'UNAVAILABLE';
}

/** The error codes of rpcStatus code numbers a server answers with (src/api/errors.ts). */
const RPC_CODES: Record<number, TesseraError['code']> = {
  3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND', 7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION', 14: 'UNAVAILABLE', 16: 'UNAUTHENTICATED',
};

/** How long a JSON call may go unanswered (a lease call waits at most 30 s for work). */
const CALL_TIMEOUT_MS = 120_000;
/** How long a live-log call may take; its lines go back to wait for the next call or the report. */
const LIVE_LOG_CALL_MS = 10_000;

/**
 * One JSON request through node:http, the body parsed when it is JSON ({} otherwise: the status
 * says what happened). The worker's hot calls went through fetch before: its web-streams layers
 * cost about 0.6–1.3 ms more CPU per call here than this, and a process task makes two.
 */
function requestJson(url: string, method: string, identity: Record<string, string>, body: string | undefined, signal?: AbortSignal): Promise<{ status: number; payload: unknown }> {
  const target = new URL(url);
  const scheme = target.protocol;
  if (scheme !== 'http:' && scheme !== 'https:') return Promise.reject(new TesseraError('INVALID_ARGUMENT', `server ${quote(url)} is not an http or https URL`));
  const headers: Record<string, string | number> = { ...identity, accept: 'application/json' };
  if (body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  return new Promise((resolve, reject) => {
    const send = scheme === 'https:' ? https.request : http.request;
    const request = send(target, { method, headers, agent: AGENTS[scheme], ...(signal ? { signal } : {}) }, (response) => {
      const parts: Buffer[] = [];
      response.on('data', (part: Buffer) => parts.push(part));
      response.on('error', reject);
      response.on('end', () => {
        let payload: unknown = {};
        try {
          payload = JSON.parse(Buffer.concat(parts).toString('utf8'));
        } catch {
          // Not JSON (a proxy's error page, say): the status is the answer.
        }
        resolve({ status: response.statusCode ?? 0, payload });
      });
    });
    request.on('error', reject);
    request.setTimeout(CALL_TIMEOUT_MS, () => request.destroy(new TesseraError('DEADLINE_EXCEEDED', `${method} ${target.origin}${target.pathname} went unanswered for ${CALL_TIMEOUT_MS / 1000} s`)));
    request.end(body);
  });
}

/** A plain file name from the server: never a path, never empty. */
function safeFileName(name: string): string {
  const base = name.replace(/[/\\]/g, '_').replace(/^\.+/, '');
  return base.slice(0, 255) || 'file';
}

export interface HttpLink extends WorkerLink {
  /** Registers the worker; the server says how long its leases last and how often to heartbeat. */
  register(): Promise<{ leaseSeconds: number; heartbeatMs: number }>;
}

export function createHttpLink(options: HttpLinkOptions): HttpLink {
  let current = 0;
  let registered = false;

  /**
   * Sends one request to the current server; when it cannot be reached or answers 5xx, moves on to
   * the next (replicas share the database) and tries again, at least once.
   */
  async function onServers<T extends { status: number }>(send: (base: string) => Promise<T>, retry: boolean, signal?: AbortSignal): Promise<T> {
    for (let tries = 0; ; tries++) {
      const base = options.servers[current]!;
      try {
        const answer = await send(base);
        if (answer.status >= 500 && tries < options.servers.length) throw new Error(`HTTP ${answer.status}`);
        return answer;
      } catch (error) {
        if (signal?.aborted || !retry || tries + 1 >= Math.max(2, options.servers.length)) throw error;
        current = (current + 1) % options.servers.length;
        options.log.warn({ server: base, next: options.servers[current], err: error }, 'server unreachable; switching');
      }
    }
  }

  // Every call names the worker it acts as; the server checks the token registered that id.
  const identity = { authorization: `Bearer ${options.token}`, 'x-tessera-worker': options.worker.id };

  /** Streams and other non-JSON exchanges, through fetch. A streamed body cannot be sent twice: no retry. */
  function call(method: string, route: string, body?: unknown, init: { signal?: AbortSignal; raw?: Readable; headers?: Record<string, string> } = {}): Promise<Response> {
    return onServers((base) => fetch(`${base}${route}`, {
      method,
      headers: {
        ...identity,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(init.raw ? { 'content-type': 'application/octet-stream' } : {}),
        ...init.headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(init.raw ? { body: init.raw, duplex: 'half' } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    } as RequestInit), !init.raw, init.signal);
  }

  /** The protocol's JSON calls (lease, complete, heartbeat…), through node:http (see requestJson). */
  async function json<T>(method: string, route: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const answer = await onServers((base) => requestJson(`${base}${route}`, method, identity, text, signal), true, signal);
    const payload = answer.payload as T & { message?: string };
    if (answer.status < 200 || answer.status > 299) throw new TesseraError(codeOfStatus(answer.status), `${method} ${route} answered HTTP ${answer.status}: ${payload.message ?? ''}`);
    return payload;
  }

  /**
   * A report of finished work (completions, failures, releases, stops) is tried again while the
   * servers or their database are away, for up to REPORT_PATIENCE_MS: an outage shorter than
   * that loses no work. A refusal (a lease no longer current, a bad request) is not retried.
   */
  async function patiently<T>(what: string, send: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + REPORT_PATIENCE_MS;
    for (let failures = 0; ; failures++) {
      try {
        return await send();
      } catch (error) {
        if (!retryable(error) || Date.now() > deadline) throw error;
        const delayMs = retryDelay(failures);
        options.log.warn({ err: error, retryInSeconds: Math.round(delayMs / 100) / 10 }, `${what} failed: ${(error as Error).message}; retrying in ${(delayMs / 1000).toFixed(1)} s`);
        await sleep(delayMs);
      }
    }
  }

  async function register(): Promise<{ leaseSeconds: number; heartbeatMs: number }> {
    const answer = await json<{ leaseSeconds: number; heartbeatMs: number; pool?: string }>('POST', '/v1/worker/register', options.worker);
    // Which tasks this token serves: the shared pool's (every account's), or one account's own.
    if (!registered) options.log.info({ pool: answer.pool }, `registered: serving ${answer.pool === 'shared' ? 'the shared pool (every account)' : answer.pool ? `the private pool of ${answer.pool}` : 'the server'}`);
    registered = true;
    return answer;
  }

  async function download(url: string, filePath: string): Promise<void> {
    const response = await fetch(url);
    if (!response.ok || !response.body) throw await transferError(response, 'downloading', url);
    await pipeline(Readable.fromWeb(response.body as never), createWriteStream(filePath));
  }

  /** PUTs a file straight to a presigned bucket URL (S3 wants its length up front, not chunks). */
  async function uploadDirect(url: string, filePath: string, size: number): Promise<void> {
    const response = await fetch(url, { method: 'PUT', body: Readable.toWeb(createReadStream(filePath)), headers: { 'content-length': String(size) }, duplex: 'half' } as RequestInit);
    if (!response.ok) throw await transferError(response, 'uploading', url);
    await response.body?.cancel();
  }

  // Slots finishing while a completion call is out are completed together in the next call.
  type Completion = { taskId: number; leaseToken: string; kind: TaskLease['kind']; outputs: ReportedOutput[]; report: TaskReport };
  const completeBatched = createBatcher<Completion, { completed: boolean; error?: string }>(async (completions) => {
    const { results } = await patiently(`completing ${completions.length} tasks`, () => json<{ results: { completed: boolean; error?: string }[] }>('POST', '/v1/worker/complete', { completions }));
    return results;
    // Two calls out at once: the server records one batch while the next one travels.
  }, COMPLETION_BATCH, 2);

  const task = (lease: TaskLease) => `/v1/worker/tasks/${lease.taskId}`;
  const tokenQuery = (lease: TaskLease) => `leaseToken=${encodeURIComponent(lease.leaseToken)}`;

  /**
   * Stores a finished task's files: straight to the bucket when blobs are in S3, else through the
   * server, small ones many to a request. Their names and blob keys in order, or null once an
   * upload finds the lease lost. A partition's empty chunks are not uploaded (blob key null): the
   * worker of each app task makes its empty file itself.
   */
  async function uploadOutputs(lease: TaskLease, files: OutputFile[]): Promise<ReportedOutput[] | null> {
    const outputs: ReportedOutput[] = new Array(files.length);
    let lost = false;
    const onDisk: DiskFile[] = [];
    for (const [index, file] of files.entries()) {
      if (file.path !== null) onDisk.push({ name: file.name, path: file.path, index });
      else if (lease.kind === 'partition') outputs[index] = { name: file.name, blobKey: null };
      else throw new TesseraError('INTERNAL', `the ${lease.kind} task ${lease.taskId} produced ${quote(file.name)} without a file`);
    }
    // With blobs in S3 the server hands out presigned URLs and the bytes go straight to the bucket
    // (asked for a page of files at a time: a partitioner may write a hundred thousand chunks).
    const direct = new Map<number, { index: number; blobKey: string; url: string }>();
    for (let first = 0; first < onDisk.length; first += UPLOAD_LINKS_PER_REQUEST) {
      const page = onDisk.slice(first, first + UPLOAD_LINKS_PER_REQUEST).map(({ index, name }) => ({ index, name }));
      const linkResponse = await call('POST', `${task(lease)}/uploads`, { leaseToken: lease.leaseToken, files: page });
      const linkPayload = (await linkResponse.json().catch(() => ({}))) as { uploads?: { index: number; blobKey: string; url: string }[] | null; message?: string };
      if (linkResponse.status === 400 && /not current/.test(linkPayload.message ?? '')) return null;
      if (!linkResponse.ok) throw new TesseraError('UNAVAILABLE', `asking where to upload the files of task ${lease.taskId} answered HTTP ${linkResponse.status}: ${linkPayload.message ?? ''}`);
      // No links: blobs are not in S3, every file goes through the server.
      if (!linkPayload.uploads) break;
      for (const upload of linkPayload.uploads) direct.set(upload.index, upload);
    }
    /** Uploads one file (straight to the bucket when it may); its blob key, or null once the lease is found lost. */
    const store = async (file: DiskFile, size: number): Promise<string | null> => {
      const presigned = direct.get(file.index);
      if (presigned && size <= MAX_DIRECT_PUT_BYTES) {
        await uploadDirect(presigned.url, file.path, size);
        return presigned.blobKey;
      }
      const response = await call('PUT', `${task(lease)}/files/${file.index}?${tokenQuery(lease)}&name=${encodeURIComponent(file.name)}`, undefined, { raw: createReadStream(file.path) });
      const payload = (await response.json().catch(() => ({}))) as { blobKey?: string; message?: string };
      // A lost lease shows here first; the task is someone else's now.
      if (response.status === 400 && /not current/.test(payload.message ?? '')) return null;
      if (!response.ok || !payload.blobKey) throw new TesseraError('UNAVAILABLE', `uploading ${quote(file.name)} answered HTTP ${response.status}: ${payload.message ?? ''}`);
      return payload.blobKey;
    };
    /** Uploads several small files in one request; their blob keys by index, or null once the lease is found lost. */
    const storeBundle = async (entries: DiskFile[]): Promise<Map<number, string> | null> => {
      const bundle = encodeBundle(await Promise.all(entries.map(async ({ path: filePath, index, name }) => ({ index, name, bytes: await readFile(filePath) }))));
      const response = await call('POST', `${task(lease)}/files?${tokenQuery(lease)}`, undefined, { raw: Readable.from([bundle]) });
      const payload = (await response.json().catch(() => ({}))) as { stored?: { index: number; blobKey: string }[]; message?: string };
      if (response.status === 400 && /not current/.test(payload.message ?? '')) return null;
      if (!response.ok || !payload.stored) throw new TesseraError('UNAVAILABLE', `uploading ${entries.length} files of task ${lease.taskId} answered HTTP ${response.status}: ${payload.message ?? ''}`);
      return new Map(payload.stored.map((file) => [file.index, file.blobKey]));
    };
    /** Records a stored (or, blob key null, an empty chunk's unneeded) file, removing the local copy; lost: the lease was found lost. */
    const done = async (file: DiskFile, blobKey: string | null | 'lost'): Promise<void> => {
      if (blobKey === 'lost') {
        lost = true;
        return;
      }
      await unlink(file.path);
      outputs[file.index] = { name: file.name, blobKey };
    };
    // A page of consecutive files at a time. Its small files without a bucket link go up
    // together (a partitioner's thousands of small chunks: one request each took about 1.5 ms
    // a chunk), the others one by one.
    const pageStarts = Array.from({ length: Math.ceil(onDisk.length / BUNDLE_FILES) }, (_, page) => page * BUNDLE_FILES);
    await eachAtMost(pageStarts, TRANSFER_CONCURRENCY / 2, async (first) => {
      const page = onDisk.slice(first, first + BUNDLE_FILES).map((file) => ({ file, size: 0 }));
      await eachAtMost(page, TRANSFER_CONCURRENCY, async (entry) => void (entry.size = (await stat(entry.file.path)).size));
      const emptyChunk = (entry: (typeof page)[number]) => lease.kind === 'partition' && entry.size === 0;
      for (const entry of page) if (emptyChunk(entry)) await done(entry.file, null);
      const toStore = page.filter((entry) => !emptyChunk(entry));
      const small = toStore.filter((entry) => !direct.has(entry.file.index) && entry.size <= BUNDLE_FILE_BYTES);
      // Up to BUNDLE_BYTES each (a page holds at most BUNDLE_FILES files); a lone small file goes up alone.
      const bundles: (typeof page)[] = [];
      if (small.length >= 2) {
        let bytes = 0;
        for (const entry of small) {
          if (bundles.length === 0 || bytes + entry.size > BUNDLE_BYTES) {
            bundles.push([]);
            bytes = 0;
          }
          bundles.at(-1)!.push(entry);
          bytes += entry.size;
        }
      }
      for (const bundle of bundles) {
        // Once one upload finds the lease lost, the rest are not sent.
        if (lost) return;
        const keys = await storeBundle(bundle.map((entry) => entry.file));
        for (const { file } of bundle) {
          const blobKey = keys === null ? 'lost' : keys.get(file.index);
          if (blobKey === undefined) throw new TesseraError('UNAVAILABLE', `the server stored the files of task ${lease.taskId} without file ${file.index}`);
          await done(file, blobKey);
        }
      }
      const bundled = new Set(bundles.flat());
      await eachAtMost(toStore.filter((entry) => !bundled.has(entry)), 2, async ({ file, size }) => {
        if (lost) return;
        await done(file, (await store(file, size)) ?? 'lost');
      });
    });
    return lost ? null : outputs;
  }

  return {
    register,

    async lease(max, waitMs, signal) {
      if (!registered) await register();
      try {
        const leases = expandLeases(await json<CompactLeases>('POST', '/v1/worker/lease', { workerId: options.worker.id, max, waitMs, compact: true }, signal));
        return leases;
      } catch (error) {
        // The server forgot this worker (its database was reset, or it was never reached): register again.
        registered = false;
        throw error;
      }
    },

    async heartbeat(leases) {
      const { lost } = await json<{ lost: number[] }>('POST', '/v1/worker/heartbeat', {
        workerId: options.worker.id,
        leases: leases.map((lease) => ({ taskId: lease.taskId, leaseToken: lease.leaseToken })),
      });
      return lost;
    },

    async enterStage(lease, state: JobState) {
      await json('POST', `${task(lease)}/stage`, { leaseToken: lease.leaseToken, state });
    },

    async fetchSource(lease, folder) {
      const response = await call('GET', `${task(lease)}/source?${tokenQuery(lease)}`);
      if (!response.ok || !response.body) {
        const payload = (await response.json().catch(() => ({}))) as { code?: number; message?: string };
        // The server's verdict keeps its code: a source that refuses (INVALID_ARGUMENT) is not retried.
        throw new TesseraError(RPC_CODES[payload.code ?? -1] ?? codeOfStatus(response.status), payload.message ?? `fetching the source answered HTTP ${response.status}`);
      }
      const name = safeFileName(decodeURIComponent(response.headers.get('x-tessera-file-name') ?? 'input'));
      await pipeline(Readable.fromWeb(response.body as never), createWriteStream(path.join(folder, name)));
    },

    async fetchChunk(lease, filePath) {
      const inputUrl = (lease as WireLease).inputUrl;
      if (!inputUrl) throw new TesseraError('INTERNAL', `task ${lease.taskId} came without its chunk link`);
      await download(inputUrl, filePath);
    },

    async fetchResults(lease, folder) {
      const { results } = await json<{ results: { name: string; url: string }[] }>('GET', `${task(lease)}/results?${tokenQuery(lease)}`);
      await eachAtMost(results, TRANSFER_CONCURRENCY, (result) => download(result.url, path.join(folder, safeFileName(result.name))));
    },

    async fetchComponent(sha256, filePath) {
      const response = await call('GET', `/v1/worker/components/${sha256}`);
      if (!response.ok || !response.body) {
        const payload = (await response.json().catch(() => ({}))) as { message?: string };
        throw new TesseraError('UNAVAILABLE', `fetching component archive ${sha256} answered HTTP ${response.status}: ${payload.message ?? ''}`);
      }
      await pipeline(Readable.fromWeb(response.body as never), createWriteStream(filePath));
    },

    async complete(lease, files: OutputFile[], report) {
      // Most in-process tasks write nothing: no upload machinery for them.
      const outputs = files.length === 0 ? [] : await uploadOutputs(lease, files);
      if (outputs === null) return false;
      const answer = await completeBatched({ taskId: lease.taskId, leaseToken: lease.leaseToken, kind: lease.kind, outputs, report });
      if (answer.error) throw new TesseraError('FAILED_PRECONDITION', `completing task ${lease.taskId}: ${answer.error}`);
      return answer.completed;
    },

    async release(leases, everything) {
      for (let first = 0; first < leases.length || (first === 0 && everything); first += MAX_LEASE_BATCH) {
        const page = leases.slice(first, first + MAX_LEASE_BATCH).map((lease) => ({ taskId: lease.taskId, leaseToken: lease.leaseToken }));
        const last = first + MAX_LEASE_BATCH >= leases.length;
        await json('POST', '/v1/worker/release', { workerId: options.worker.id, leases: page, ...(everything && last ? { everything: true } : {}) });
      }
    },

    async appendLogs(batches) {
      // A task's report waits for this call: a server that hangs must not hold it for minutes.
      const body = { leases: batches.map(({ lease, lines }) => ({ taskId: lease.taskId, leaseToken: lease.leaseToken, lines })) };
      const { refused } = await json<{ refused: number[] }>('POST', '/v1/worker/logs', body, AbortSignal.timeout(LIVE_LOG_CALL_MS));
      return refused;
    },

    async stopped(lease) {
      await json('POST', `${task(lease)}/stopped`, { leaseToken: lease.leaseToken });
    },

    async fail(lease, error, retry, report, lost) {
      await patiently(`reporting the failure of task ${lease.taskId}`, async () => {
        const response = await call('POST', `${task(lease)}/fail`, { leaseToken: lease.leaseToken, error, retry, report, ...(lost ? { lost: true } : {}) });
        // A lost lease: the failure is moot, the task already belongs to someone else.
        if (!response.ok && response.status !== 400) throw new TesseraError('UNAVAILABLE', `reporting the failure of task ${lease.taskId} answered HTTP ${response.status}`);
      });
    },
  };
}
