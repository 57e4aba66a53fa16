import { TesseraError } from '../domain/errors.js';

// Failed authentication, counted per client address: past `slowAfter` failures within a window
// each further refusal is answered more slowly, and past `limit` the address gets 429 with
// Retry-After until its window ends, its keys not even looked up. Guessing a key (256 random
// bits) is hopeless anyway; this keeps a guesser from costing the database a lookup per try.
// Memory is bounded: at most `maxAddresses` are tracked, the oldest forgotten first.

export interface AuthThrottleOptions {
  /** Failures from one address within a window before it is refused outright. */
  limit: number;
  /** Failures before each further refusal is delayed. */
  slowAfter: number;
  windowMs: number;
  maxAddresses: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = { limit: 50, slowAfter: 10, windowMs: 60_000, maxAddresses: 10_000 };

/** The longest a refusal is held back. */
const MAX_DELAY_MS = 2000;

export interface AuthThrottle {
  /** Throws RESOURCE_EXHAUSTED (429, Retry-After) while `address` is over its limit. */
  check(address: string): void;
  /** Counts a failure from `address`; how long to hold the refusal back, in milliseconds. */
  failed(address: string): number;
  /** Addresses tracked now (for tests of the bound). */
  size(): number;
}

/**
 * The address failures are counted under: an IPv6 client is counted by its /64 (one machine
 * commonly holds the whole prefix, and could otherwise walk through it); IPv4 as it is.
 */
export function throttleKey(ip: string): string {
  const address = (ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip).replace(/%.*$/, '').toLowerCase();
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.split('::');
  const before = head ? head.split(':') : [];
  const after = tail ? tail.split(':') : [];
  const groups = tail === undefined ? before : [...before, ...Array(Math.max(0, 8 - before.length - after.length)).fill('0'), ...after];
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export function createAuthThrottle(options: AuthThrottleOptions = DEFAULT_AUTH_THROTTLE, now: () => number = Date.now): AuthThrottle {
  // Insertion order is age order: a failure moves its address to the end.
  const failures = new Map<string, { count: number; since: number }>();
  const current = (address: string) => {
    const entry = failures.get(address);
    if (entry && now() - entry.since >= options.windowMs) {
      failures.delete(address);
      return undefined;
    }
    return entry;
  };
  return {
    check(address) {
      const entry = current(address);
      if (!entry || entry.count < options.limit) return;
      const retryAfterSeconds = Math.max(1, Math.ceil((entry.since + options.windowMs - now()) / 1000));
      throw new TesseraError('RESOURCE_EXHAUSTED', `too many failed authentications from ${address}: ${entry.count} in the last ${options.windowMs / 1000} s`, {
        hint: `check the API key; try again in ${retryAfterSeconds} s`,
        retryAfterSeconds,
      });
    },
    failed(address) {
      const entry = current(address) ?? { count: 0, since: now() };
      entry.count += 1;
      failures.delete(address);
      if (failures.size >= options.maxAddresses) failures.delete(failures.keys().next().value!);
      failures.set(address, entry);
      const over = entry.count - options.slowAfter;
      return over <= 0 ? 0 : Math.min(MAX_DELAY_MS, 50 * 2 ** Math.min(over, 10));
    },
    size: () => failures.size,
  };
}
