import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TesseraError, quote } from '../domain/errors.js';
import type { JobState } from '../domain/job-state.js';
import type { Log } from '../domain/log.js';
import type { OutputFile, TaskLease, WorkerLink } from '../domain/worker-link.js';
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

/** Files moved at once: a job's thousands of chunks must not take longer than a lease. */
const TRANSFER_CONCURRENCY = 8;

interface WireLease extends TaskLease {
  inputUrl: string | null;
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

  async function call(method: string, route: string, body?: unknown, init: { signal?: AbortSignal; raw?: Readable; headers?: Record<string, string> } = {}): Promise<Response> {
    for (let tries = 0; ; tries++) {
      const base = options.servers[current]!;
      try {
        const response = await fetch(`${base}${route}`, {
          method,
          headers: {
            authorization: `Bearer ${options.token}`,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(init.raw ? { 'content-type': 'application/octet-stream' } : {}),
            ...init.headers,
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          ...(init.raw ? { body: init.raw, duplex: 'half' } : {}),
          ...(init.signal ? { signal: init.signal } : {}),
        } as RequestInit);
        if (response.status >= 500 && tries < options.servers.length) throw new Error(`HTTP ${response.status}`);
        return response;
      } catch (error) {
        if (init.signal?.aborted || init.raw || tries + 1 >= Math.max(2, options.servers.length)) throw error;
        // This server is down or failing: the next one (replicas share the database).
        current = (current + 1) % options.servers.length;
        options.log.warn({ server: base, next: options.servers[current], err: error }, 'server unreachable; switching');
      }
    }
  }

  async function json<T>(method: string, route: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await call(method, route, body, signal ? { signal } : {});
    const payload = (await response.json().catch(() => ({}))) as T & { message?: string };
    if (!response.ok) throw new TesseraError(response.status === 401 ? 'UNAUTHENTICATED' : 'UNAVAILABLE', `${method} ${route} answered HTTP ${response.status}: ${payload.message ?? ''}`);
    return payload;
  }

  async function register(): Promise<{ leaseSeconds: number; heartbeatMs: number }> {
    const answer = await json<{ leaseSeconds: number; heartbeatMs: number }>('POST', '/v1/worker/register', options.worker);
    registered = true;
    return answer;
  }

  async function download(url: string, filePath: string): Promise<void> {
    const response = await fetch(url);
    if (!response.ok || !response.body) throw new TesseraError('UNAVAILABLE', `downloading ${url.split('?')[0]} answered HTTP ${response.status}`);
    await pipeline(Readable.fromWeb(response.body as never), createWriteStream(filePath));
  }

  const task = (lease: TaskLease) => `/v1/worker/tasks/${lease.taskId}`;
  const tokenQuery = (lease: TaskLease) => `leaseToken=${encodeURIComponent(lease.leaseToken)}`;

  return {
    register,

    async lease(max, waitMs, signal) {
      if (!registered) await register();
      try {
        const { leases } = await json<{ leases: WireLease[] }>('POST', '/v1/worker/lease', { workerId: options.worker.id, max, waitMs }, signal);
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
        const payload = (await response.json().catch(() => ({}))) as { message?: string };
        throw new TesseraError('FAILED_PRECONDITION', payload.message ?? `fetching the source answered HTTP ${response.status}`);
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
      let next = 0;
      const downloader = async () => {
        while (next < results.length) {
          const result = results[next++]!;
          await download(result.url, path.join(folder, safeFileName(result.name)));
        }
      };
      await Promise.all(Array.from({ length: Math.min(TRANSFER_CONCURRENCY, results.length) }, downloader));
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
      const outputs: { name: string; blobKey: string }[] = new Array(files.length);
      let lost = false;
      let next = 0;
      const uploader = async () => {
        while (next < files.length && !lost) {
          const index = next++;
          const file = files[index]!;
          await stat(file.path);
          const response = await call('PUT', `${task(lease)}/files/${index}?${tokenQuery(lease)}&name=${encodeURIComponent(file.name)}`, undefined, { raw: createReadStream(file.path) });
          const payload = (await response.json().catch(() => ({}))) as { blobKey?: string; message?: string };
          // A lost lease shows here first; the task is someone else's now.
          if (response.status === 400 && /not current/.test(payload.message ?? '')) lost = true;
          else if (!response.ok || !payload.blobKey) throw new TesseraError('UNAVAILABLE', `uploading ${quote(file.name)} answered HTTP ${response.status}: ${payload.message ?? ''}`);
          else outputs[index] = { name: file.name, blobKey: payload.blobKey };
        }
      };
      await Promise.all(Array.from({ length: Math.min(TRANSFER_CONCURRENCY, files.length) }, uploader));
      if (lost) return false;
      const response = await call('POST', `${task(lease)}/complete`, { leaseToken: lease.leaseToken, outputs, report });
      const payload = (await response.json().catch(() => ({}))) as { completed?: boolean; message?: string };
      if (response.status === 400 && /not current/.test(payload.message ?? '')) return false;
      if (!response.ok) throw new TesseraError('UNAVAILABLE', `completing task ${lease.taskId} answered HTTP ${response.status}: ${payload.message ?? ''}`);
      return payload.completed === true;
    },

    async stopped(lease) {
      await json('POST', `${task(lease)}/stopped`, { leaseToken: lease.leaseToken });
    },

    async fail(lease, error, retry, report) {
      const response = await call('POST', `${task(lease)}/fail`, { leaseToken: lease.leaseToken, error, retry, report });
      // A lost lease: the failure is moot, the task already belongs to someone else.
      if (!response.ok && response.status !== 400) throw new TesseraError('UNAVAILABLE', `reporting the failure of task ${lease.taskId} answered HTTP ${response.status}`);
    },
  };
}
