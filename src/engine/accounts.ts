import { randomUUID } from 'node:crypto';
import { notFound, unauthenticated } from '../domain/errors.js';
import { API_KEY_PREFIX, hashSecret, newAccountId, newApiKey } from '../domain/ids.js';
import type { Db, Queryable } from '../store/db.js';
import type { KeyScope } from '../store/accounts.js';
import { countAccounts, findApiKeyByHash, insertAccount, insertApiKey, listAccountIds } from '../store/accounts.js';

// Accounts and their API keys. A key is shown once, when it is made; only its SHA-256 is stored
// (keys carry 256 random bits, so a slow password hash would add nothing but latency).

export interface NewKey {
  accountId: string;
  apiKey: string;
}

async function storeKey(db: Queryable, accountId: string, apiKey: string, scope: KeyScope): Promise<void> {
  await insertApiKey(db, { id: randomUUID(), accountId, keyHash: hashSecret(apiKey), keyPrefix: apiKey.slice(0, API_KEY_PREFIX.length + 4), scope });
}

/**
 * On an empty database: the first account and its key (`initialApiKey` when the operator chose
 * one, else a random key). Null when accounts already exist. Safe for replicas starting at once:
 * the check and insert run in one transaction under an advisory lock.
 */
export async function ensureFirstAccount(db: Db, initialApiKey: string | undefined): Promise<NewKey | null> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(7264001)');
    if ((await countAccounts(tx)) > 0) return null;
    const accountId = newAccountId();
    const apiKey = initialApiKey ?? newApiKey();
    await insertAccount(tx, accountId);
    await storeKey(tx, accountId, apiKey, 'customer');
    return { accountId, apiKey };
  });
}

/** Another key for an account (the first account when none is named); a new account when `newAccount`. */
export async function createKey(db: Db, options: { accountId?: string; newAccount?: boolean; scope?: KeyScope } = {}): Promise<NewKey> {
  let accountId = options.accountId;
  if (accountId !== undefined && !(await listAccountIds(db)).includes(accountId)) {
    throw notFound('account', accountId, 'omit the account to use the first one, or make a new account');
  }
  if (options.newAccount) {
    accountId = newAccountId();
    await insertAccount(db, accountId);
  }
  accountId ??= (await listAccountIds(db))[0];
  if (!accountId) {
    accountId = newAccountId();
    await insertAccount(db, accountId);
  }
  const apiKey = newApiKey();
  await storeKey(db, accountId, apiKey, options.scope ?? 'customer');
  return { accountId, apiKey };
}

/** The account a presented key belongs to, or UNAUTHENTICATED. */
export async function authenticate(db: Db, apiKey: string, scope: KeyScope): Promise<string> {
  return accountOfKey(await findApiKeyByHash(db, hashSecret(apiKey)), scope);
}

function accountOfKey(found: { accountId: string; scope: KeyScope } | null, scope: KeyScope): string {
  if (!found || found.scope !== scope) {
    throw unauthenticated('the API key is not valid', 'send a key made by `tessera up` or `tessera key create` in the Authorization header');
  }
  return found.accountId;
}

/** How long a server trusts a key it has looked up: a key revoked in the database stops working within this. */
export const KEY_CACHE_MS = 2000;
const MAX_CACHED_KEYS = 10_000;

export interface KeyCheck {
  /** authenticate(), answering from memory for a key found less than KEY_CACHE_MS ago. */
  authenticate(apiKey: string, scope: KeyScope): Promise<string>;
}

/**
 * Key lookups remembered for a moment. Every worker call and every customer request presents a
 * key: a worker running 60 ms tasks looked its key up three times per task (measured), one
 * query in three of the whole task flow. Only keys that exist are remembered (by their hash), so
 * guessing keys fills nothing; an unknown key is looked up each time.
 */
export function createKeyCheck(db: Db, ttlMs = KEY_CACHE_MS): KeyCheck {
  const known = new Map<string, { at: number; key: { accountId: string; scope: KeyScope } }>();
  return {
    async authenticate(apiKey, scope) {
      const hash = hashSecret(apiKey);
      const cached = known.get(hash);
      if (cached && Date.now() - cached.at < ttlMs) return accountOfKey(cached.key, scope);
      const found = await findApiKeyByHash(db, hash);
      if (found) {
        if (known.size >= MAX_CACHED_KEYS) known.clear();
        known.set(hash, { at: Date.now(), key: found });
      } else {
        known.delete(hash);
      }
      return accountOfKey(found, scope);
    },
  };
}
