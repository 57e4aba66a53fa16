import type { FastifyRequest } from 'fastify';
import { unauthenticated } from '../domain/errors.js';
import { authenticate } from '../engine/accounts.js';
import type { Db } from '../store/db.js';

// `Authorization: <key>` and `Authorization: Bearer <key>` both work: ByteNite's clients send both.

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

export function customerAuth(db: Db) {
  return async (request: FastifyRequest): Promise<void> => {
    request.accountId = await authenticate(db, presentedKey(request.headers.authorization), 'customer');
  };
}
