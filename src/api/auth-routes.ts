import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine/engine.js';
import { customerAuth, throttled } from './auth.js';
import type { RequestValidator } from './validation.js';

// /v1/auth: exchange an API key for a short-lived access token; an account's own keys.

export function registerAuthRoutes(app: FastifyInstance, engine: Engine, validate: RequestValidator): void {
  app.register(async (scope) => {
    scope.addHook('preHandler', customerAuth(engine));
    scope.get('/v1/auth/keys', async (request) => ({ keys: await engine.accountKeys.list(request.accountId) }));
    scope.post('/v1/auth/keys', async (request) => {
      const body = (request.body === undefined || request.body === null ? {} : validate.body('Auth_CreateKey', request.body)) as { scope?: string };
      return engine.accountKeys.create(request.accountId, body.scope);
    });
    scope.delete<{ Params: { keyId: string } }>('/v1/auth/keys/:keyId', async (request) => {
      await engine.accountKeys.revoke(request.accountId, request.params.keyId);
      return { ok: true, requestId: request.id, message: `key ${request.params.keyId} revoked` };
    });
  });

  app.post('/v1/auth/access_token', async (request) => {
    const { apiKey } = validate.body('Auth_GetAccessToken', request.body) as { apiKey: string };
    const key = await throttled(request, () => engine.keys.authenticateKey(apiKey, 'customer'));
    const { token, expiresIn } = engine.tokens.issue(key.accountId, 'customer', key.id);
    // expiresIn is an int64 in ByteNite's API, so it travels as a string.
    return { token, expiresIn: String(expiresIn), scope: 'customer' };
  });
}
