import type { FastifyInstance } from 'fastify';
import { invalidArgument, quote } from '../domain/errors.js';
import type { Engine } from '../engine/engine.js';
import { accountActivity } from '../store/account-activity.js';
import { customerAuth } from './auth.js';
import { CONNECTED_SECONDS } from './observability-routes.js';
import type { RequestValidator } from './validation.js';

// GET /v1/customer/stats: the account's throughput, failures and queue depth per minute, for the
// dashboard's overview page. Read from the database, so every replica answers for the whole
// deployment (unlike a process's /metrics), and only ever about the calling account.

export const STATS_MAX_MINUTES = 1440;
const DEFAULT_MINUTES = 60;

export function registerStatsRoutes(app: FastifyInstance, engine: Engine, validate: RequestValidator): void {
  app.register(
    async (customer) => {
      customer.addHook('preHandler', customerAuth(engine));
      customer.get('/stats', async (request) => {
        const query = validate.query('Customer_GetStats', request.query);
        const minutes = query.minutes === undefined ? DEFAULT_MINUTES : Number(query.minutes);
        if (!Number.isSafeInteger(minutes) || minutes < 1 || minutes > STATS_MAX_MINUTES) {
          throw invalidArgument('minutes', `minutes ${quote(query.minutes)} must be from 1 to ${STATS_MAX_MINUTES}`, 'for example minutes=60 (the last hour)');
        }
        const activity = await accountActivity(engine.deps.db, request.accountId, minutes, CONNECTED_SECONDS);
        return { buckets: activity.minutes.map((minute) => ({ ...minute, at: minute.at.toISOString() })), now: activity.now };
      });
    },
    { prefix: '/v1/customer' },
  );
}
