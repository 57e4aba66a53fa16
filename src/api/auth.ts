import type { FastifyRequest } from 'fastify';
import { unauthenticated } from '../domain/errors.js';
import { TOKEN_PREFIX } from '../engine/access-tokens.js';
import type { Engine } from '../engine/engine.js';
import type { FoundKey, KeyScope } from '../store/accounts.js';

// `Authorization: <key|token>` and `Authorization: Bearer <key|token>` both work: ByteNite's clients send both.

declare module 'fastify' {
  interface FastifyRequest {
    accountId: string;
  }
}

export function presentedKey(header: string | undefined): string {
  const value = header?.trim() ?? '';
  const key = /^bearer\s+/i.test(value) ? value.replace(/^bearer\s+/i, '').trim() : value;
  if (!key) throw unauthenticated('the Authorization header is missing', 'send "Authorization: Bearer <api key>"');
  if (key.length > 512 || /\s/.test(key)) throw unauthenticated('the Authorization header does not hold an API key', 'send "Authorization: Bearer <api key>"');
  return key;
}

/** The key behind an API key or an access token (POST /v1/auth/access_token) of the given scope. */
export async function keyOf(engine: Engine, credential: string, scope: KeyScope): Promise<FoundKey> {
  if (!credential.startsWith(TOKEN_PREFIX)) return engine.keys.authenticateKey(credential, scope);
  const claims = engine.tokens.verify(credential);
  if (claims.scope !== scope) throw unauthenticated(`this access token is for the ${claims.scope} API`);
  // A token dies with its key.
  const key = await engine.keys.activeKey(claims.keyId);
  if (!key || key.accountId !== claims.accountId) throw unauthenticated('the key this access token was made from was revoked', 'use another key of this account');
  return key;
}

/** The account behind an API key or an access token of the given scope. */
export async function accountOf(engine: Engine, credential: string, scope: KeyScope): Promise<string> {
  return (await keyOf(engine, credential, scope)).accountId;
}

export function customerAuth(engine: Engine) {
  return async (request: FastifyRequest): Promise<void> => {
    request.accountId = await accountOf(engine, presentedKey(request.headers.authorization), 'customer');
  };
}
