import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { TesseraError, invalidArgument, isTesseraError, quote, unauthenticated } from '../domain/errors.js';
import { isJobState } from '../domain/job-state.js';
import { compactLeases } from '../domain/lease-wire.js';
import type { ReportedOutput, TaskReport, TaskUsage } from '../domain/worker-link.js';
import { COMPLETION_BATCH, MAX_LEASE_BATCH } from '../domain/worker-link.js';
import type { Engine } from '../engine/engine.js';
import type { WorkerRegistration } from '../engine/remote-workers.js';
import type { TaskKind } from '../domain/types.js';
import type { FoundKey } from '../store/accounts.js';
import { authenticate } from './auth.js';
import { baseUrlOf } from './links.js';
import { logLinesOf, number, object, text } from './worker-input.js';
import { registerWorkerLogRoute } from './worker-log-routes.js';

// The worker protocol: worker agents (tessera worker) register, long-poll for leases, heartbeat,
// upload their files and complete or fail tasks. Only worker tokens are accepted here, and
// worker tokens are refused by the customer API. A worker id is bound to the token it registered
// with; every later call names its worker (X-Tessera-Worker) and may act only as that worker, on
// the leases handed to it (engine/lease-tokens.ts).

declare module 'fastify' {
  interface FastifyRequest {
    /** The worker a call acts as, checked against its token (every route but /register). */
    workerId: string;
    /** The token the call presented. */
    workerKey: FoundKey;
  }
}

const WORKER_HEADER = 'x-tessera-worker';

const MAX_LEASE_WAIT_MS = 30_000;

/**
 * JSON bodies that grow with a job: a partitioner's completion and upload-link request list every
 * chunk (100,000 chunks ≈ 10 MiB), a report carries the attempt's bounded logs. The customer
 * API's 1 MiB limit would refuse a big job's partition.
 */
const LARGE_BODY = { bodyLimit: 64 * 1024 * 1024 };

type TaskParams = { Params: { taskId: string } };

function taskIdOf(request: { params: { taskId: string } }): number {
  const raw = request.params.taskId;
  if (!/^\d{1,15}$/.test(raw)) throw invalidArgument('taskId', `task id ${quote(raw)} is not a number`);
  return Number(raw);
}

/** Log lines one report may carry: a worker bounds them; the server checks. */
const MAX_REPORT_LINES = 100_000;

/** The optional `report` of a completion or failure: the attempt's logs and usage. */
function reportOf(raw: unknown): TaskReport {
  if (raw === undefined || raw === null) return { logs: [], usage: null };
  const report = object(raw);
  const logs = logLinesOf(report.logs, 'report.logs', MAX_REPORT_LINES);
  let usage: TaskUsage | null = null;
  if (report.usage !== undefined && report.usage !== null) {
    const raw = object(report.usage);
    usage = {
      cpuSeconds: number(raw.cpuSeconds, 'report.usage.cpuSeconds', 0, 1e9),
      wallSeconds: number(raw.wallSeconds, 'report.usage.wallSeconds', 0, 1e9),
      peakMemoryBytes: number(raw.peakMemoryBytes, 'report.usage.peakMemoryBytes', 0, 2 ** 52),
    };
  }
  return { logs, usage };
}

/** The `leases` of a heartbeat or release: `[{taskId, leaseToken}]` (absent: none). */
function leaseList(raw: unknown): { taskId: number; leaseToken: string }[] {
  const leases = Array.isArray(raw) ? raw : [];
  return leases.map((lease, index) => {
    const entry = object(lease);
    return { taskId: number(entry.taskId, `leases[${index}].taskId`, 1, Number.MAX_SAFE_INTEGER), leaseToken: text(entry.leaseToken, `leases[${index}].leaseToken`, 100) };
  });
}

function taskKind(value: unknown, field: string): TaskKind {
  if (value !== 'partition' && value !== 'app' && value !== 'assemble') throw invalidArgument(field, `${field} ${quote(value)} must be "partition", "app" or "assemble"`);
  return value;
}

/** A completion's list of uploaded files (blob key null: a partition's empty chunk); sizes are the server's to find out. */
function outputsOf(raw: unknown, field: string): ReportedOutput[] {
  if (raw !== undefined && !Array.isArray(raw)) throw invalidArgument(field, `${field} must be a list of {name, blobKey}`);
  return (raw ?? []).map((output: unknown, index: number): ReportedOutput => {
    const entry = object(output);
    return { name: text(entry.name, `${field}[${index}].name`, 1024), blobKey: entry.blobKey === null ? null : text(entry.blobKey, `${field}[${index}].blobKey`, 1024) };
  });
}

/** An application/octet-stream body, passed on unread (the parser below); anything else is refused. */
function streamedBody(body: unknown, what: 'file' | 'bundle'): Readable {
  if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') throw invalidArgument('body', `send the ${what} as application/octet-stream`);
  return body as Readable;
}

/** What a worker says of its runtimes: a small object of strings, lists of strings and nulls, kept as said. */
function runtimeReport(raw: unknown): Record<string, unknown> {
  const report = object(raw);
  const kept: Record<string, unknown> = {};
  for (const key of ['sandbox', 'limits', 'network', 'containers', 'images', 'hostImages']) {
    const value = report[key];
    if (value === null || value === undefined) kept[key] = null;
    else if (Array.isArray(value)) kept[key] = value.slice(0, 200).map((entry, index) => text(entry, `runtime.${key}[${index}]`, 255));
    else kept[key] = text(value, `runtime.${key}`, 255);
  }
  return kept;
}

export function registerWorkerRoutes(app: FastifyInstance, engine: Engine): void {
  const workers = engine.workers;
  app.register(
    async (scope) => {
      // Upload bodies are streamed to the blob store as they arrive, never held in memory.
      scope.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
      // Checked before a body is read: only workers may send the large ones.
      scope.addHook('onRequest', async (request) => {
        const key = await authenticate(engine, request, 'worker').catch((error: unknown) => {
          // Only a refused token is a 401: the database being away is a 503 the worker retries.
          if (isTesseraError(error) && error.code !== 'UNAUTHENTICATED') throw error;
          // A revoked token says so: its worker stops with that message.
          const revoked = isTesseraError(error) && /revoked/.test(error.message) ? `${error.message}; ` : '';
          throw unauthenticated(`${revoked}this endpoint needs a worker token`, 'make one with `tessera key create --worker`');
        });
        request.workerKey = key;
        if (request.routeOptions.url === '/v1/worker/register') return;
        const workerId = request.headers[WORKER_HEADER];
        if (typeof workerId !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(workerId)) {
          throw invalidArgument(WORKER_HEADER, `the ${WORKER_HEADER} header ${quote(workerId)} must name the calling worker`, 'send the id the worker registered with');
        }
        await workers.identify(workerId, key.id);
        request.workerId = workerId;
      });

      /** A body's workerId, when given, is the calling worker's (older workers send it). */
      const sameWorker = (request: { workerId: string }, value: unknown): string => {
        if (value !== undefined && value !== request.workerId) {
          engine.deps.log.warn({ workerId: request.workerId, named: String(value).slice(0, 128) }, 'worker call refused: it named another worker');
          throw new TesseraError('PERMISSION_DENIED', `worker ${quote(request.workerId)} cannot act as worker ${quote(value)}`, { hint: 'a worker acts only as itself' });
        }
        return request.workerId;
      };

      scope.post('/register', async (request) => {
        const body = object(request.body);
        const registration: WorkerRegistration = {
          id: text(body.id, 'id', 128),
          name: text(body.name, 'name'),
          slots: number(body.slots, 'slots', 1, 1024),
          region: text(body.region ?? '', 'region', 64),
          cpus: number(body.cpus, 'cpus', 0, 100_000),
          memoryGb: number(body.memoryGb, 'memoryGb', 0, 1_000_000),
          gpus: Array.isArray(body.gpus) ? body.gpus.map((gpu, index) => text(gpu, `gpus[${index}]`, 64)) : [],
          // Older workers say nothing of containers: they run no image but on their host.
          containers: body.containers === true,
          hostImages: Array.isArray(body.hostImages) ? body.hostImages.slice(0, 100).map((pattern, index) => text(pattern, `hostImages[${index}]`, 255)) : [],
          ...(body.runtime !== undefined ? { runtime: runtimeReport(body.runtime) } : {}),
        };
        if (!/^[A-Za-z0-9._:-]{1,128}$/.test(registration.id)) throw invalidArgument('id', `worker id ${quote(registration.id)} must be 1-128 letters, digits, ".", "_", ":" or "-"`);
        return workers.register(registration, request.workerKey);
      });

      scope.post('/lease', async (request, reply) => {
        const body = object(request.body);
        const controller = new AbortController();
        // A worker that hangs up (killed, restarted) ends the wait, so no task is leased to a
        // connection nobody reads. (The response's 'close' is the connection's; the request's
        // fires as soon as its body has been read.)
        reply.raw.on('close', () => {
          if (!reply.raw.writableFinished) controller.abort();
        });
        // Its token revoked on this server while it waits: the wait ends, and so does the worker.
        let revoked = false;
        const onRevoked = (keyId: string) => {
          if (keyId !== request.workerKey.id) return;
          revoked = true;
          controller.abort();
        };
        engine.deps.signals.on('key-revoked', onRevoked);
        let leases;
        try {
          leases = await workers.lease(
            sameWorker(request, body.workerId),
            number(body.max ?? 1, 'max', 1, MAX_LEASE_BATCH),
            number(body.waitMs ?? 0, 'waitMs', 0, MAX_LEASE_WAIT_MS),
            baseUrlOf(engine.deps.config, request),
            controller.signal,
          );
        } finally {
          engine.deps.signals.off('key-revoked', onRevoked);
        }
        if (revoked) throw unauthenticated('this key was revoked while the worker waited for tasks', 'make a new one with `tessera key create --worker`');
        return body.compact === true ? compactLeases(leases) : { leases };
      });

      scope.post('/heartbeat', async (request) => {
        const body = object(request.body);
        return { lost: await workers.heartbeat(sameWorker(request, body.workerId), leaseList(body.leases)) };
      });

      scope.post<TaskParams>('/tasks/:taskId/stage', async (request) => {
        const body = object(request.body);
        if (!isJobState(body.state)) throw invalidArgument('state', `state ${quote(body.state)} is not a job state`);
        await workers.enterStage(request.workerId, taskIdOf(request), body.leaseToken, body.state);
        return { ok: true };
      });

      scope.get<TaskParams & { Querystring: { leaseToken?: string } }>('/tasks/:taskId/source', async (request, reply) => {
        const source = await workers.openSource(request.workerId, taskIdOf(request), request.query.leaseToken);
        reply.raw.on('close', () => void source.cleanup());
        return reply.header('content-type', 'application/octet-stream').header('x-tessera-file-name', encodeURIComponent(source.name)).send(source.stream);
      });

      scope.get<TaskParams & { Querystring: { leaseToken?: string } }>('/tasks/:taskId/results', async (request) => ({
        results: await workers.resultLinks(request.workerId, taskIdOf(request), request.query.leaseToken, baseUrlOf(engine.deps.config, request)),
      }));

      scope.put<{ Params: { taskId: string; index: string }; Querystring: { leaseToken?: string; name?: string } }>('/tasks/:taskId/files/:index', async (request) => {
        return workers.upload(request.workerId, taskIdOf(request), request.query.leaseToken, Number(request.params.index), String(request.query.name ?? ''), streamedBody(request.body, 'file'));
      });

      // Many small files in one body (domain/file-bundle.ts): `{stored: [{index, blobKey}]}`.
      scope.post<TaskParams & { Querystring: { leaseToken?: string } }>('/tasks/:taskId/files', async (request) => {
        return { stored: await workers.uploadBundle(request.workerId, taskIdOf(request), request.query.leaseToken, streamedBody(request.body, 'bundle')) };
      });

      scope.post<TaskParams>('/tasks/:taskId/uploads', LARGE_BODY, async (request) => {
        const body = object(request.body);
        const files = (Array.isArray(body.files) ? body.files : []).map((file, index) => {
          const entry = object(file);
          return { index: number(entry.index, `files[${index}].index`, 0, 1_000_000), name: text(entry.name, `files[${index}].name`, 1024) };
        });
        if (files.length > 10_000) throw invalidArgument('files', `at most 10000 files per request, not ${files.length}`);
        return { uploads: await workers.uploadLinks(request.workerId, taskIdOf(request), body.leaseToken, files) };
      });

      scope.post<TaskParams>('/tasks/:taskId/complete', LARGE_BODY, async (request) => {
        const body = object(request.body);
        return { completed: await workers.complete(request.workerId, taskIdOf(request), body.leaseToken, outputsOf(body.outputs, 'outputs'), reportOf(body.report)) };
      });

      // Several completions in one call: `{completions: [{taskId, leaseToken, kind, outputs, report}]}`,
      // answered `{results: [{completed, error?}]}` in the same order.
      scope.post('/complete', LARGE_BODY, async (request) => {
        const body = object(request.body);
        if (!Array.isArray(body.completions) || body.completions.length > COMPLETION_BATCH) {
          throw invalidArgument('completions', `completions must be a list of at most ${COMPLETION_BATCH}`);
        }
        const completions = body.completions.map((raw, index) => {
          const entry = object(raw);
          return {
            taskId: number(entry.taskId, `completions[${index}].taskId`, 1, Number.MAX_SAFE_INTEGER),
            leaseToken: text(entry.leaseToken, `completions[${index}].leaseToken`, 100),
            ...(entry.kind === undefined ? {} : { kind: taskKind(entry.kind, `completions[${index}].kind`) }),
            outputs: outputsOf(entry.outputs, `completions[${index}].outputs`),
            report: reportOf(entry.report),
          };
        });
        return { results: await workers.completeMany(request.workerId, completions) };
      });

      scope.post('/release', async (request) => {
        const body = object(request.body);
        const leases = leaseList(body.leases);
        if (leases.length > MAX_LEASE_BATCH) throw invalidArgument('leases', `at most ${MAX_LEASE_BATCH} leases per call, not ${leases.length}`);
        if (body.everything !== undefined && typeof body.everything !== 'boolean') throw invalidArgument('everything', `everything ${quote(body.everything)} must be true or false`);
        return { released: await workers.release(sameWorker(request, body.workerId), leases, body.everything === true) };
      });

      scope.post<TaskParams>('/tasks/:taskId/fail', LARGE_BODY, async (request) => {
        const body = object(request.body);
        await workers.fail(request.workerId, taskIdOf(request), body.leaseToken, text(body.error, 'error', 64 * 1024), body.retry !== false, reportOf(body.report), body.lost === true);
        return { ok: true };
      });

      scope.get<{ Params: { sha256: string } }>('/components/:sha256', async (request, reply) => {
        const { stream, size } = await workers.openComponent(request.params.sha256);
        return reply.header('content-type', 'application/gzip').header('content-length', String(size)).send(stream);
      });

      registerWorkerLogRoute(scope, engine);

      scope.post<TaskParams>('/tasks/:taskId/stopped', async (request) => {
        const body = object(request.body);
        await workers.stopped(request.workerId, taskIdOf(request), text(body.leaseToken, 'leaseToken', 100));
        return { ok: true };
      });
    },
    { prefix: '/v1/worker' },
  );
}
