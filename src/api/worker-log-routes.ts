import type { FastifyInstance } from 'fastify';
import { invalidArgument, quote } from '../domain/errors.js';
import { LIVE_LOG_CALL_LINES, MAX_LEASE_BATCH } from '../domain/worker-link.js';
import type { Engine } from '../engine/engine.js';
import type { LiveLogLines } from '../store/live-logs.js';
import { MAX_LINE_CHARS, logLinesOf, number, object, text } from './worker-input.js';

// POST /v1/worker/logs: lines of the calling worker's running attempts, a batch per lease, sent
// while they run (worker/log-shipper.ts). Registered inside the worker routes' scope, so the
// token and X-Tessera-Worker checks hold; every lease must be the caller's own.

/** What one call may carry in all: the worker sends less (LIVE_LOG_CALL_CHARS); JSON escapes add the rest. */
const BODY_LIMIT = { bodyLimit: 2 * LIVE_LOG_CALL_LINES * MAX_LINE_CHARS };

export function registerWorkerLogRoute(scope: FastifyInstance, engine: Engine): void {
  scope.post('/logs', BODY_LIMIT, async (request) => {
    const body = object(request.body);
    if (!Array.isArray(body.leases)) throw invalidArgument('leases', `leases ${quote(body.leases)} must be a list of {taskId, leaseToken, lines}`);
    if (body.leases.length > MAX_LEASE_BATCH) throw invalidArgument('leases', `at most ${MAX_LEASE_BATCH} leases per call, not ${body.leases.length}`, 'send the rest in another call');
    const batches: LiveLogLines[] = [];
    const named = new Set<number>();
    let lineCount = 0;
    for (const [index, raw] of body.leases.entries()) {
      const entry = object(raw, `leases[${index}]`);
      const taskId = number(entry.taskId, `leases[${index}].taskId`, 1, Number.MAX_SAFE_INTEGER);
      if (!Number.isSafeInteger(taskId)) throw invalidArgument(`leases[${index}].taskId`, `leases[${index}].taskId ${quote(taskId)} must be a whole number`);
      if (named.has(taskId)) throw invalidArgument(`leases[${index}].taskId`, `task ${taskId} is named twice`, 'send each task\'s lines in one entry');
      named.add(taskId);
      const lines = logLinesOf(entry.lines, `leases[${index}].lines`, LIVE_LOG_CALL_LINES);
      lineCount += lines.length;
      if (lineCount > LIVE_LOG_CALL_LINES) throw invalidArgument('leases', `a call may carry at most ${LIVE_LOG_CALL_LINES} lines in all`, 'send the rest in another call');
      batches.push({ taskId, leaseToken: text(entry.leaseToken, `leases[${index}].leaseToken`, 100), lines });
    }
    return { refused: await engine.workers.appendLogs(request.workerId, batches) };
  });
}
