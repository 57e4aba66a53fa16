import { createHmac, timingSafeEqual } from 'node:crypto';
import { TesseraError } from '../domain/errors.js';

// Result links are capability URLs: path + expiry + HMAC over both. They need no API key (a
// browser or curl can follow them) and stop working after their expiry.

export interface LinkSigner {
  /** Query string `expires=…&signature=…` for `key`, valid for `ttlSeconds`. */
  sign(key: string, ttlSeconds: number, now?: number): { expires: number; signature: string };
  /** Throws PERMISSION_DENIED when the signature is wrong or the link has expired. */
  verify(key: string, expires: unknown, signature: unknown, now?: number): void;
}

export function createLinkSigner(secret: string): LinkSigner {
  const mac = (key: string, expires: number) => createHmac('sha256', secret).update(`${key}\n${expires}`).digest('base64url');
  return {
    sign(key, ttlSeconds, now = Date.now()) {
      const expires = Math.floor(now / 1000) + ttlSeconds;
      return { expires, signature: mac(key, expires) };
    },
    verify(key, expires, signature, now = Date.now()) {
      const expiresAt = typeof expires === 'string' && /^\d{1,12}$/.test(expires) ? Number(expires) : Number.NaN;
      if (!Number.isFinite(expiresAt) || typeof signature !== 'string') {
        throw new TesseraError('PERMISSION_DENIED', 'this link is missing its expires or signature parameter', { hint: 'ask the API for a fresh link (GET /v1/customer/jobs/{jobId}/results)' });
      }
      const expected = Buffer.from(mac(key, expiresAt));
      const given = Buffer.from(signature);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
        throw new TesseraError('PERMISSION_DENIED', 'this link has an invalid signature', { hint: 'use the link exactly as the API returned it, or ask for a fresh one' });
      }
      if (expiresAt * 1000 < now) {
        throw new TesseraError('PERMISSION_DENIED', `this link expired at ${new Date(expiresAt * 1000).toISOString()}`, { hint: 'ask the API for a fresh link (GET /v1/customer/jobs/{jobId}/results)' });
      }
    },
  };
}
