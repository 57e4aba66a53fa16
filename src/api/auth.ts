import type { FastifyInstance, FastifyRequest } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTesseraError, unauthenticated } from '../domain/errors.js';
import type { AuthThrottle } from './auth-throttle.js';
import { createAuthThrottle, throttleKey } from './auth-throttle.js';
import { TOKEN_PREFIX } from '../engine/access-tokens.js';
import type { Engine } from '../engine/engine.js';
import type { FoundKey, KeyScope } from '../store/accounts.js';

// `Authorization: <key|token>` and `Authorization: Bearer <key|token>` both work: ByteNite's clients send both.

declare module 'fastify' {
  interface FastifyRequest {
    accountId: string;
  }
  interface FastifyInstance {
    authThrottle: AuthThrottle;
  }
}

/** Failed authentication is counted per address on this server (auth-throttle.ts). */
export function registerAuthThrottle(app: FastifyInstance, throttle: AuthThrottle = createAuthThrottle()): void {
  app.decorate('authThrottle', throttle);
}

/**
 * An authentication attempt, throttled: an address with too many failures lately is refused
 * (429) before anything is looked up, unless `known` says the credential is good without a
 * lookup (a client sharing the address, behind the same NAT, keeps working). Each failure is
 * counted, and held back once there are several.
 */
export async function throttled<T>(request: FastifyRequest, attempt: () => Promise<T>, known: () => boolean = () => false): Promise<T> {
  const address = throttleKey(request.ip);
  try {
    request.server.authThrottle.check(address);
  } catch (error) {
    if (!known()) throw error;
  }
  try {
    return await attempt();
  } catch (error) {
    if (isTesseraError(error) && error.code === 'UNAUTHENTICATED') {
      const delayMs = request.server.authThrottle.failed(address);
      if (delayMs > 0) await sleep(delayMs);
    }
    throw error;
  }
}

function validToken(engine: Engine, token: string): boolean {
  try {
    engine.tokens.verify(token);
    return true;
  } catch {
    return false;
  }
}

/** The key a request's Authorization header presents, of the given scope. A missing header is no guess and is not counted. */
export async function authenticate(engine: Engine, request: FastifyRequest, scope: KeyScope): Promise<FoundKey> {
  const credential = presentedKey(request.headers.authorization);
  return throttled(request, () => keyOf(engine, credential, scope), () => (credential.startsWith(TOKEN_PREFIX) ? validToken(engine, credential) : engine.keys.isKnown(credential)));
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
    request.accountId = (await authenticate(engine, request, 'customer')).accountId;
  };
}
