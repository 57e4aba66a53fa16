import { createHash, randomBytes, randomInt } from 'node:crypto';

// Crockford base32, as ULIDs use it: time-ordered 26-character ids (the seed's jobId format).
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ALPHANUMERIC = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function newUlid(now: number = Date.now()): string {
  let time = '';
  let remaining = now;
  for (let index = 0; index < 10; index++) {
    time = CROCKFORD[remaining % 32] + time;
    remaining = Math.floor(remaining / 32);
  }
  const random = randomBytes(16);
  let tail = '';
  for (let index = 0; index < 16; index++) tail += CROCKFORD[random[index]! % 32];
  return time + tail;
}

export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Account ids are 7 characters (the Bytescale account id format). */
export function newAccountId(): string {
  let id = '';
  for (let index = 0; index < 7; index++) id += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return id;
}

export const API_KEY_PREFIX = 'tsk_';

/** A customer API key: shown once, stored only as its hash. 256 random bits, so a plain SHA-256 is enough. */
export function newApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}
