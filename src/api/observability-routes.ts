import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { unauthenticated } from '../domain/errors.js';
import type { Engine } from '../engine/engine.js';
import type { WorkerRow } from '../store/stats.js';
import { listWorkers, sharedFleet } from '../store/stats.js';
import { customerAuth, presentedKey, throttled } from './auth.js';

// What operators and dashboards watch: /metrics (Prometheus), /healthz (the process answers),
// /readyz (and its database does), the request log and latency histogram, and the workers list.

const READY_TIMEOUT_MS = 2000;
/** Workers heard from within this long count as connected. */
export const CONNECTED_SECONDS = 30;

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * TESSERA_METRICS_TOKEN, when set, as `Authorization: Bearer <token>` (in Prometheus,
 * `authorization: {credentials_file: …}`). Compared as digests in constant time: neither the
 * answer's timing nor its length tells how much of a guess was right.
 */
function checkMetricsToken(request: FastifyRequest, tokenDigest: Buffer): void {
  const hint = 'send "Authorization: Bearer <TESSERA_METRICS_TOKEN>" (Prometheus: authorization.credentials_file)';
  let presented: string;
  try {
    presented = presentedKey(request.headers.authorization);
  } catch {
    throw unauthenticated('/metrics needs the metrics token', hint);
  }
  if (!timingSafeEqual(digest(presented), tokenDigest)) throw unauthenticated('the metrics token is wrong', hint);
}

/** A worker as the API shows it: its pool named ("shared", or the account whose own it is). */
export function workerView(worker: WorkerRow) {
  const { accountId, ...rest } = worker;
  return { ...rest, pool: accountId ?? 'shared', startedAt: worker.startedAt.toISOString(), lastSeenAt: worker.lastSeenAt.toISOString() };
}

export function registerObservabilityRoutes(app: FastifyInstance, engine: Engine): void {
  const { metrics } = engine.deps;

  // One line per request, with its id: the path without the query string (signed links carry
  // their signature there) and never a header (keys travel in Authorization).
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (route === '/metrics' || route === '/healthz' || route === '/readyz') return;
    request.log.info({ method: request.method, path: request.url.split('?')[0], route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
  });

  const { metricsToken } = engine.deps.config;
  const tokenDigest = metricsToken === undefined ? undefined : digest(metricsToken);
  app.get('/metrics', async (request, reply) => {
    if (tokenDigest) await throttled(request, async () => checkMetricsToken(request, tokenDigest));
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/healthz', async () => ({ ok: true }));

  app.get('/readyz', async (_request, reply) => {
    const started = Date.now();
    try {
      await Promise.race([
        engine.deps.db.query('SELECT 1'),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS).unref()),
      ]);
      return { ok: true, database: 'reachable', ms: Date.now() - started };
    } catch (error) {
      return reply.code(503).send({ ok: false, database: 'unreachable', reason: (error as Error).message.replace(/\/\/[^@/]*@/g, '//***@') });
    }
  });

  app.register(
    async (customer) => {
      customer.addHook('preHandler', customerAuth(engine));
      // An account sees its own workers; of the shared fleet, only how large it is.
      customer.get('/workers', async (request) => ({
        data: (await listWorkers(engine.deps.db, CONNECTED_SECONDS, request.accountId)).map(workerView),
        shared: await sharedFleet(engine.deps.db, CONNECTED_SECONDS),
      }));
    },
    { prefix: '/v1/customer' },
  );
}
