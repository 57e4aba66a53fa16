import { createHmac, timingSafeEqual } from 'node:crypto';
import { unauthenticated } from '../domain/errors.js';
import type { KeyScope } from '../store/accounts.js';

// Short-lived access tokens (POST /v1/auth/access_token): an API key exchanged for a signed
// token that works wherever the key does until it expires, or until that key is revoked (the
// token names it; api/auth.ts checks it is still active). Format:
// tst_<base64url JSON {a: account, s: scope, k: key id, e: expiry seconds}>.<base64url HMAC-SHA256>

export const TOKEN_PREFIX = 'tst_';
export const TOKEN_TTL_SECONDS = 3600;

export interface TokenIssuer {
  issue(accountId: string, scope: KeyScope, keyId: string, now?: number): { token: string; expiresIn: number };
  /** The token's account, scope and key; UNAUTHENTICATED when it is malformed, tampered with or expired. */
  verify(token: string, now?: number): { accountId: string; scope: KeyScope; keyId: string };
}

export function createTokenIssuer(secret: string, ttlSeconds = TOKEN_TTL_SECONDS): TokenIssuer {
  const mac = (payload: string) => createHmac('sha256', secret).update(payload).digest();
  const refused = (why: string) => unauthenticated(`the access token ${why}`, 'get a new one with POST /v1/auth/access_token {"apiKey": …}');
  return {
    issue(accountId, scope, keyId, now = Date.now()) {
      const payload = Buffer.from(JSON.stringify({ a: accountId, s: scope, k: keyId, e: Math.floor(now / 1000) + ttlSeconds })).toString('base64url');
      return { token: `${TOKEN_PREFIX}${payload}.${mac(payload).toString('base64url')}`, expiresIn: ttlSeconds };
    },
    verify(token, now = Date.now()) {
      const [payload, signature, extra] = token.slice(TOKEN_PREFIX.length).split('.');
      if (!token.startsWith(TOKEN_PREFIX) || !payload || !signature || extra !== undefined) throw refused('is malformed');
      const expected = mac(payload);
      const given = Buffer.from(signature, 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw refused('has an invalid signature');
      let claims: { a?: unknown; s?: unknown; k?: unknown; e?: unknown };
      try {
        claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      } catch {
        throw refused('is malformed');
      }
      // A token of an earlier release names no key: it cannot be revoked with it, so it is refused.
      if (typeof claims.a !== 'string' || (claims.s !== 'customer' && claims.s !== 'worker') || typeof claims.k !== 'string' || typeof claims.e !== 'number') throw refused('is malformed');
      if (claims.e * 1000 <= now) throw refused(`expired at ${new Date(claims.e * 1000).toISOString()}`);
      return { accountId: claims.a, scope: claims.s, keyId: claims.k };
    },
  };
}
