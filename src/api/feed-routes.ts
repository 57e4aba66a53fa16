import type { EventEmitter } from 'node:events';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { invalidArgument, quote } from '../domain/errors.js';
import type { TaskKind } from '../domain/types.js';
import type { LogLevel } from '../domain/worker-link.js';
import type { Engine } from '../engine/engine.js';
import type { FeedMessage } from '../engine/job-feeds.js';
import { TASK_LOGS_SIGNAL } from '../engine/live-logs.js';
import type { StoredLogLine } from '../store/task-reports.js';
import { listJobTasks } from '../store/task-reports.js';
import { customerAuth } from './auth.js';
import type { RequestValidator } from './validation.js';

// What a job is doing, as it happens: logs (ByteNite's POST /v1/customer/logs and a plain
// GET …/logs that can follow), the tasks table, and server-sent events of state and progress
// (ByteNite's GET /v1/customer/events, and one job's GET …/jobs/{jobId}/events).

const SERVICE_KINDS: Record<string, TaskKind> = { PARTITIONER: 'partition', ASSEMBLER: 'assemble', TASKRUNNER: 'app' };
const SERVICE_OF: Record<TaskKind, string> = { partition: 'PARTITIONER', assemble: 'ASSEMBLER', app: 'TASKRUNNER' };
const MAX_LOG_LINES = 10_000;
const KEEPALIVE_MS = 15_000;
const FOLLOW_POLL_MS = 250;

type Params = { Params: { jobId: string } };

function logEntry(line: StoredLogLine) {
  return { log: line.line, timestamp: line.at, level: line.level, chunkIndex: line.chunkIndex, attempt: line.attempt, stream: line.stream };
}

/** Starts a text/event-stream response; the returned writer sends one event, the closer ends it. */
function openEventStream(request: FastifyRequest, reply: FastifyReply): { send: (event: string, data: unknown, id?: number) => void; close: () => void; closed: Promise<void> } {
  reply.hijack();
  const origin = reply.getHeader('access-control-allow-origin');
  reply.raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    // Proxies such as nginx would otherwise hold events back until a buffer fills.
    'x-accel-buffering': 'no',
    'x-request-id': String(request.id),
    ...(origin ? { 'access-control-allow-origin': String(origin) } : {}),
  });
  reply.raw.write(': connected\n\n');
  const keepalive = setInterval(() => reply.raw.write(': keep-alive\n\n'), KEEPALIVE_MS);
  const closed = new Promise<void>((resolve) => reply.raw.on('close', () => resolve()));
  void closed.then(() => clearInterval(keepalive));
  return {
    send(event, data, id) {
      if (reply.raw.writableEnded) return;
      reply.raw.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify({ result: { event, data } })}\n\n`);
    },
    close() {
      clearInterval(keepalive);
      if (!reply.raw.writableEnded) reply.raw.end();
    },
    closed,
  };
}

/**
 * Waits until lines of `jobId` are stored in this process (the `task-logs` signal) or `ms` pass:
 * lines stored by other replicas are found by the next read after the timeout.
 */
function storedOrAfter(signals: EventEmitter, jobId: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signals.off(TASK_LOGS_SIGNAL, onLines);
      resolve();
    };
    const onLines = (stored: string) => void (stored === jobId && done());
    const timer = setTimeout(done, ms);
    signals.on(TASK_LOGS_SIGNAL, onLines);
  });
}

/** Last-Event-ID (sent by EventSource on reconnect) as a cursor. */
function lastEventId(request: FastifyRequest): number | null {
  const raw = request.headers['last-event-id'];
  if (raw === undefined) return null;
  const text = String(raw);
  if (!/^\d{1,15}$/.test(text)) throw invalidArgument('Last-Event-ID', `Last-Event-ID ${quote(text)} is not an event id`);
  return Number(text);
}

function levelsOf(levels: string[] | undefined): LogLevel[] | undefined {
  if (!levels || levels.length === 0) return undefined;
  return [...new Set(levels.map((level) => (level === 'WARNING' ? 'WARN' : level) as LogLevel))];
}

export function registerFeedRoutes(app: FastifyInstance, engine: Engine, validate: RequestValidator): void {
  const { feeds } = engine;

  app.register(
    async (customer) => {
      customer.addHook('preHandler', customerAuth(engine));

      customer.post('/logs', async (request) => {
        const body = validate.body('Customer_GetLogs', request.body) as { jobId: string; taskIds?: string[]; levels?: string[]; services?: string[] };
        const kinds = body.services && body.services.length > 0 ? body.services.map((service) => SERVICE_KINDS[service]!) : undefined;
        const { lines } = await feeds.logs(request.accountId, {
          jobId: body.jobId,
          ...(body.taskIds && body.taskIds.length > 0 ? { taskIds: body.taskIds.map(Number) } : {}),
          ...(kinds ? { kinds } : {}),
          ...(levelsOf(body.levels) ? { levels: levelsOf(body.levels)! } : {}),
          limit: MAX_LOG_LINES,
        });
        const answer: { partitioner: ReturnType<typeof logEntry>[]; assembler: ReturnType<typeof logEntry>[]; taskrunner: Record<string, { logs: ReturnType<typeof logEntry>[] }> } = { partitioner: [], assembler: [], taskrunner: {} };
        for (const line of lines) {
          if (line.kind === 'partition') answer.partitioner.push(logEntry(line));
          else if (line.kind === 'assemble') answer.assembler.push(logEntry(line));
          else (answer.taskrunner[String(line.taskId)] ??= { logs: [] }).logs.push(logEntry(line));
        }
        return answer;
      });

      customer.get<Params>('/jobs/:jobId/logs', async (request, reply) => {
        const query = validate.query('Customer_GetJobLogs', request.query) as { after?: string | number; limit?: string | number; follow?: string };
        const limit = query.limit === undefined ? 1000 : Number(query.limit);
        if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LOG_LINES) throw invalidArgument('limit', `limit ${quote(query.limit)} must be from 1 to ${MAX_LOG_LINES}`);
        let after = query.after === undefined ? 0 : Number(query.after);
        const jobId = request.params.jobId;
        const line = (entry: StoredLogLine) => ({ id: entry.id, taskId: String(entry.taskId), service: SERVICE_OF[entry.kind], ...logEntry(entry) });
        if (query.follow !== 'true' && query.follow !== '1') {
          const { lines, ended } = await feeds.logs(request.accountId, { jobId, afterId: after, limit });
          return { logs: lines.map(line), next: String(lines.at(-1)?.id ?? after), ended };
        }
        // Checked before the stream opens, so an unknown job is a plain 404.
        await feeds.logs(request.accountId, { jobId, afterId: after, limit: 1 });
        const stream = openEventStream(request, reply);
        let open = true;
        void stream.closed.then(() => (open = false));
        while (open) {
          const { lines, ended } = await feeds.logs(request.accountId, { jobId, afterId: after, limit: MAX_LOG_LINES });
          for (const entry of lines) stream.send('log', line(entry), entry.id);
          after = lines.at(-1)?.id ?? after;
          // The job's end is read before its lines: once ended, a page with no lines is the last.
          if (ended && lines.length === 0) {
            stream.send('end', { jobId });
            break;
          }
          if (lines.length < MAX_LOG_LINES) await storedOrAfter(engine.deps.signals, jobId, FOLLOW_POLL_MS);
        }
        stream.close();
        return reply;
      });

      customer.get<Params>('/jobs/:jobId/tasks', async (request) => {
        const query = validate.query('Customer_GetJobTasks', request.query) as Record<string, string | number | undefined>;
        const limit = Number(query['pagination.limit'] ?? 1000);
        const offset = Number(query['pagination.offset'] ?? 0);
        if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw invalidArgument('pagination.limit', `pagination.limit ${quote(query['pagination.limit'])} must be from 1 to 10000`);
        if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgument('pagination.offset', `pagination.offset ${quote(query['pagination.offset'])} must be 0 or more`);
        await engine.jobs.getJob(request.accountId, request.params.jobId);
        const tasks = await listJobTasks(engine.deps.db, request.params.jobId, { limit, offset });
        return {
          data: tasks.map((task) => ({
            ...task,
            taskId: String(task.taskId),
            service: SERVICE_OF[task.kind],
            startedAt: task.startedAt?.toISOString() ?? null,
            finishedAt: task.finishedAt?.toISOString() ?? null,
          })),
        };
      });

      const events = async (request: FastifyRequest, reply: FastifyReply, jobId: string | null) => {
        const afterId = lastEventId(request);
        let stream: ReturnType<typeof openEventStream> | undefined;
        const pending: FeedMessage[] = [];
        const send = (message: FeedMessage) => (stream ? stream.send(message.event, message.data, 'id' in message ? message.id : undefined) : pending.push(message));
        let ended = false;
        // Subscribing checks the job first, so an unknown job is a plain 404, not an empty stream.
        const unsubscribe = await feeds.subscribe(request.accountId, jobId, afterId, send, () => {
          ended = true;
          stream?.close();
        });
        stream = openEventStream(request, reply);
        for (const message of pending) stream.send(message.event, message.data, 'id' in message ? message.id : undefined);
        if (ended) stream.close();
        await stream.closed;
        unsubscribe();
        return reply;
      };
      customer.get<Params>('/jobs/:jobId/events', (request, reply) => events(request, reply, request.params.jobId));
      customer.get('/events', (request, reply) => events(request, reply, null));
    },
    { prefix: '/v1/customer' },
  );
}
