import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine/engine.js';
import type { RequestValidator } from './validation.js';

// /v1/auth: exchange an API key for a short-lived access token.

export function registerAuthRoutes(app: FastifyInstance, engine: Engine, validate: RequestValidator): void {
  app.post('/v1/auth/access_token', async (request) => {
    const { apiKey } = validate.body('Auth_GetAccessToken', request.body) as { apiKey: string };
    const accountId = await engine.keys.authenticate(apiKey, 'customer');
    const { token, expiresIn } = engine.tokens.issue(accountId, 'customer');
    // expiresIn is an int64 in ByteNite's API, so it travels as a string.
    return { token, expiresIn: String(expiresIn), scope: 'customer' };
  });
}
