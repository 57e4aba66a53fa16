import type { FastifyInstance } from 'fastify';
import { invalidArgument, quote } from '../domain/errors.js';
import type { Engine } from '../engine/engine.js';
import { listWorkers } from '../store/stats.js';
import { authenticate } from './auth.js';
import { CONNECTED_SECONDS, workerView } from './observability-routes.js';
import type { RequestValidator } from './validation.js';

// /v1/operator: the deployment's operator (an operator key, never a customer's) makes and lists
// accounts, sets their quotas, disables them, sees every worker, and manages its own keys and
// the shared workers' tokens.

const MAX_PAGE = 1000;

function pageNumber(raw: unknown, name: string, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value > max) throw invalidArgument(name, `${name} ${quote(raw)} must be a whole number from 0 to ${max}`);
  return value;
}

export function registerOperatorRoutes(app: FastifyInstance, engine: Engine, validate: RequestValidator): void {
  const { operator } = engine;
  app.register(
    async (scope) => {
      scope.addHook('preHandler', async (request) => {
        request.accountId = (await authenticate(engine, request, 'operator')).accountId;
      });

      scope.get<{ Querystring: Record<string, string> }>('/accounts', async (request) => ({
        accounts: await operator.list(pageNumber(request.query['pagination.limit'], 'pagination.limit', 100, MAX_PAGE), pageNumber(request.query['pagination.offset'], 'pagination.offset', 0, Number.MAX_SAFE_INTEGER)),
      }));

      scope.post('/accounts', async (request) => {
        const body = (request.body === undefined || request.body === null ? {} : validate.body('Operator_CreateAccount', request.body)) as { name?: unknown; quotas?: unknown };
        return operator.create(body.name, body.quotas);
      });

      scope.get<{ Params: { accountId: string } }>('/accounts/:accountId', async (request) => ({ account: await operator.get(request.params.accountId) }));

      scope.patch<{ Params: { accountId: string } }>('/accounts/:accountId', async (request) => {
        const body = validate.body('Operator_UpdateAccount', request.body) as { quotas?: unknown; disabled?: unknown };
        return operator.update(request.params.accountId, body);
      });

      scope.get('/workers', async () => ({ data: (await listWorkers(engine.deps.db, CONNECTED_SECONDS, 'all')).map(workerView) }));

      scope.get('/keys', async (request) => ({ keys: await engine.accountKeys.list(request.accountId) }));
      scope.post('/keys', async (request) => {
        const body = (request.body === undefined || request.body === null ? {} : validate.body('Operator_CreateKey', request.body)) as { scope?: string };
        return engine.accountKeys.create(request.accountId, body.scope, 'operator');
      });
      scope.delete<{ Params: { keyId: string } }>('/keys/:keyId', async (request) => {
        await engine.accountKeys.revoke(request.accountId, request.params.keyId, 'operator');
        return { ok: true, requestId: request.id, message: `key ${request.params.keyId} revoked` };
      });
    },
    { prefix: '/v1/operator' },
  );
}
