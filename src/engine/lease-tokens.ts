import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

// A lease token names the worker it was handed to: `<random>.<HMAC(worker id, random)>`. A worker
// presenting another worker's token (leaked, or read off a shared disk) is found out without a
// database read, on every call that carries one. The key is the deployment's, so every replica agrees.

export interface LeaseTokens {
  /** A fresh token for the leases of one call to `owner`. */
  mint(owner: string): string;
  /** Whether `token` was minted for `owner`. */
  isFor(owner: string, token: string): boolean;
}

export function createLeaseTokens(secret: string): LeaseTokens {
  const key = createHmac('sha256', secret).update('lease tokens').digest();
  const mac = (owner: string, random: string) => createHmac('sha256', key).update(`${owner}\n${random}`).digest('base64url').slice(0, 22);
  return {
    mint(owner) {
      const random = randomUUID();
      return `${random}.${mac(owner, random)}`;
    },
    isFor(owner, token) {
      const [random, signature, extra] = token.split('.');
      if (!random || !signature || extra !== undefined) return false;
      const expected = Buffer.from(mac(owner, random));
      const given = Buffer.from(signature);
      return expected.length === given.length && timingSafeEqual(expected, given);
    },
  };
}
