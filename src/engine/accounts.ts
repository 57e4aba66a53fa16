import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { failedPrecondition, invalidArgument, notFound, quote, unauthenticated } from '../domain/errors.js';
import { API_KEY_PREFIX, hashSecret, newAccountId, newApiKey } from '../domain/ids.js';
import type { Db, Queryable } from '../store/db.js';
import type { AccountRole, FoundKey, KeyRow, KeyScope } from '../store/accounts.js';
import { countAccounts, countActiveKeys, findActiveApiKey, findApiKeyByHash, findOperatorAccount, getAccount, insertAccount, insertApiKey, keyRefusal, listAccountIds, listApiKeys, revokeApiKey, touchApiKey } from '../store/accounts.js';

// Accounts and their API keys. A key is shown once, when it is made; only its SHA-256 is stored
// (keys carry 256 random bits, so a slow password hash would add nothing but latency).

export interface NewKey {
  accountId: string;
  apiKey: string;
  keyId: string;
}

async function storeKey(db: Queryable, accountId: string, apiKey: string, scope: KeyScope): Promise<string> {
  const id = randomUUID();
  await insertApiKey(db, { id, accountId, keyHash: hashSecret(apiKey), keyPrefix: apiKey.slice(0, API_KEY_PREFIX.length + 4), scope });
  return id;
}

/** A new customer account and its first key, on `db` (a transaction, so never one without the other). */
export async function createAccountWithKey(db: Queryable, name: string): Promise<NewKey> {
  const accountId = newAccountId();
  await insertAccount(db, accountId, { name });
  const apiKey = newApiKey();
  return { accountId, apiKey, keyId: await storeKey(db, accountId, apiKey, 'customer') };
}

/** Held while accounts are made at start, so replicas starting at once agree. */
const ACCOUNTS_LOCK = 7264001;

/**
 * The operator's account (it holds the operator's keys and the shared fleet's worker tokens),
 * made when missing. Made on a database that already has accounts (an upgrade), it takes over the
 * worker tokens made before there was one: they were the shared fleet's.
 */
async function ensureOperatorAccount(tx: Queryable): Promise<{ accountId: string; made: boolean }> {
  const existing = await findOperatorAccount(tx);
  if (existing) return { accountId: existing, made: false };
  const accountId = newAccountId();
  await insertAccount(tx, accountId, { role: 'operator', name: 'operator' });
  await tx.query(`UPDATE api_keys SET account_id = $1 WHERE scope = 'worker'`, [accountId]);
  return { accountId, made: true };
}

export interface StartKeys {
  /** The first customer account and its key, on an empty database. */
  firstKey: NewKey | null;
  /** The operator's first key, on an empty database. */
  operatorKey: NewKey | null;
}

/**
 * On an empty database: the first account and its key (`initialApiKey` when the operator chose
 * one, else a random key), and the operator's account and key (likewise). Safe for replicas
 * starting at once: the checks and inserts run in one transaction under an advisory lock.
 */
export async function ensureFirstAccount(db: Db, initialApiKey: string | undefined, initialOperatorKey?: string): Promise<StartKeys> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [ACCOUNTS_LOCK]);
    const fresh = (await countAccounts(tx)) === 0;
    const operator = await ensureOperatorAccount(tx);
    if (!fresh) return { firstKey: null, operatorKey: null };
    const accountId = newAccountId();
    const apiKey = initialApiKey ?? newApiKey();
    await insertAccount(tx, accountId);
    const firstKey = { accountId, apiKey, keyId: await storeKey(tx, accountId, apiKey, 'customer') };
    // An operator key only for a deployment that never had one: a database whose first account was made before.
    const hasOperatorKey = (await countActiveKeys(tx, operator.accountId, 'operator')) > 0;
    const operatorApiKey = initialOperatorKey ?? newApiKey();
    const operatorKey = hasOperatorKey ? null : { accountId: operator.accountId, apiKey: operatorApiKey, keyId: await storeKey(tx, operator.accountId, operatorApiKey, 'operator') };
    return { firstKey, operatorKey };
  });
}

/**
 * Another key: an operator key, a worker token (the shared fleet's; an account's own when one is
 * named), or a customer key (the first account's when none is named; a new account's when `newAccount`).
 */
export async function createKey(db: Db, options: { accountId?: string; newAccount?: boolean; scope?: KeyScope } = {}): Promise<NewKey> {
  const scope = options.scope ?? 'customer';
  let accountId = options.accountId;
  // Any account, the operator's too (its worker tokens are the shared fleet's).
  if (accountId !== undefined && (await getAccount(db, accountId)) === null) {
    throw notFound('account', accountId, 'omit the account to use the first one, or make a new account');
  }
  if (options.newAccount) {
    accountId = newAccountId();
    await insertAccount(db, accountId);
  }
  if (scope === 'operator' || (scope === 'worker' && accountId === undefined)) {
    accountId = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [ACCOUNTS_LOCK]);
      return (await ensureOperatorAccount(tx)).accountId;
    });
  }
  accountId ??= (await listAccountIds(db))[0];
  if (!accountId) {
    accountId = newAccountId();
    await insertAccount(db, accountId);
  }
  const apiKey = newApiKey();
  return { accountId, apiKey, keyId: await storeKey(db, accountId, apiKey, scope) };
}

/** The account a presented key belongs to, or UNAUTHENTICATED. */
export async function authenticate(db: Db, apiKey: string, scope: KeyScope): Promise<string> {
  return accountOfKey(await findApiKeyByHash(db, hashSecret(apiKey)), scope).accountId;
}

function accountOfKey(found: FoundKey | null, scope: KeyScope): FoundKey {
  if (!found || found.scope !== scope) {
    throw unauthenticated('the API key is not valid', 'send a key made by `tessera up` or `tessera key create` in the Authorization header');
  }
  return found;
}

/** How long a server trusts a key it has looked up: a key revoked on another replica stops working within this. */
export const KEY_CACHE_MS = 2000;
const MAX_CACHED_KEYS = 10_000;
/** How long a key found valid still counts as a known client's (api/auth.ts lets it past a throttled address). */
const KNOWN_KEY_MS = 10 * 60_000;

export interface KeyCheck {
  /** authenticate(), answering from memory for a key found less than KEY_CACHE_MS ago. */
  authenticate(apiKey: string, scope: KeyScope): Promise<string>;
  /** The key itself (its id too, which an access token names). */
  authenticateKey(apiKey: string, scope: KeyScope): Promise<FoundKey>;
  /** A key by id while it is not revoked (an access token's key), remembered as briefly. */
  activeKey(keyId: string): Promise<FoundKey | null>;
  /** Whether this key was found valid within the last KNOWN_KEY_MS: worth a lookup even from an address that guesses keys. */
  isKnown(apiKey: string): boolean;
  /** Forgets a revoked key at once on this server (other replicas within KEY_CACHE_MS). */
  forget(keyId: string): void;
}

/**
 * Key lookups remembered for a moment. Every worker call and every customer request presents a
 * key: a worker running 60 ms tasks looked its key up three times per task (measured), one
 * query in three of the whole task flow. Only keys that exist are remembered (by their hash), so
 * guessing keys fills nothing; an unknown key is looked up each time. A lookup from the database
 * also notes the key's use (at most once a minute).
 */
export function createKeyCheck(db: Db, ttlMs = KEY_CACHE_MS, signals?: EventEmitter): KeyCheck {
  const byHash = new Map<string, { at: number; key: FoundKey }>();
  const byId = new Map<string, { at: number; key: FoundKey | null }>();
  const knownHashes = new Map<string, number>();
  const remember = <K, V>(map: Map<K, V>, key: K, value: V) => {
    if (map.size >= MAX_CACHED_KEYS) map.clear();
    map.set(key, value);
  };
  const noteUse = (key: FoundKey) => void touchApiKey(db, key.id).catch(() => {});
  async function authenticateKey(apiKey: string, scope: KeyScope): Promise<FoundKey> {
    const hash = hashSecret(apiKey);
    const cached = byHash.get(hash);
    if (cached && Date.now() - cached.at < ttlMs) return accountOfKey(cached.key, scope);
    const found = await findApiKeyByHash(db, hash);
    if (found) {
      remember(byHash, hash, { at: Date.now(), key: found });
      remember(knownHashes, hash, Date.now());
      noteUse(found);
    } else {
      byHash.delete(hash);
      // A revoked key says so (its worker, say, stops with this message), rather than "not valid".
      const refusal = await keyRefusal(db, hash);
      if (refusal?.revokedAt) throw unauthenticated(`this key was revoked at ${refusal.revokedAt.toISOString()}`, 'use another key (tessera key list shows them; tessera key create makes one)');
      if (refusal?.disabledAt) throw unauthenticated(`this key's account was disabled at ${refusal.disabledAt.toISOString()}`, 'ask the operator of this deployment');
    }
    return accountOfKey(found, scope);
  }
  return {
    authenticateKey,
    authenticate: async (apiKey, scope) => (await authenticateKey(apiKey, scope)).accountId,
    isKnown(apiKey) {
      const seen = knownHashes.get(hashSecret(apiKey));
      return seen !== undefined && Date.now() - seen < KNOWN_KEY_MS;
    },
    async activeKey(keyId) {
      const cached = byId.get(keyId);
      if (cached && Date.now() - cached.at < ttlMs) return cached.key;
      const found = await findActiveApiKey(db, keyId);
      remember(byId, keyId, { at: Date.now(), key: found });
      if (found) noteUse(found);
      return found;
    },
    forget(keyId) {
      byId.delete(keyId);
      for (const [hash, entry] of byHash) {
        if (entry.key.id !== keyId) continue;
        byHash.delete(hash);
        knownHashes.delete(hash);
      }
      // Long polls of this key's workers end now rather than at their next call (api/worker-routes.ts).
      signals?.emit('key-revoked', keyId);
    },
  };
}

export interface KeyView {
  id: string;
  prefix: string;
  scope: KeyScope;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const viewOf = (row: KeyRow): KeyView => ({ id: row.id, prefix: row.prefix, scope: row.scope, createdAt: row.createdAt.toISOString(), lastUsedAt: row.lastUsedAt?.toISOString() ?? null, revokedAt: row.revokedAt?.toISOString() ?? null });

/** An account's own keys through the API (/v1/auth/keys): listed without their secrets, made (shown once), revoked. */
export function createAccountKeys(db: Db, keys: KeyCheck) {
  return {
    async list(accountId: string): Promise<KeyView[]> {
      return (await listApiKeys(db, accountId)).map(viewOf);
    },
    /** A customer account makes customer keys and its own workers' tokens; the operator, operator keys and shared workers' tokens. */
    async create(accountId: string, scope: unknown, role: AccountRole = 'customer'): Promise<{ key: KeyView; apiKey: string }> {
      if (role === 'customer' && scope !== undefined && scope !== 'customer' && scope !== 'worker') {
        throw invalidArgument('scope', `scope ${quote(scope)} must be "customer" (a key for this API) or "worker" (a token for this account's own workers)`);
      }
      if (role === 'operator' && scope !== undefined && scope !== 'operator' && scope !== 'worker') {
        throw invalidArgument('scope', `scope ${quote(scope)} must be "worker" (a shared worker's token) or "operator" (another operator key)`);
      }
      const made = await createKey(db, { accountId, scope: (scope as KeyScope | undefined) ?? (role === 'operator' ? 'worker' : 'customer') });
      const key = (await listApiKeys(db, accountId)).find((row) => row.id === made.keyId)!;
      return { key: viewOf(key), apiKey: made.apiKey };
    },
    async revoke(accountId: string, keyId: string, role: AccountRole = 'customer'): Promise<void> {
      const keysRoute = role === 'operator' ? '/v1/operator/keys' : '/v1/auth/keys';
      await db.transaction(async (tx) => {
        const target = (await listApiKeys(tx, accountId)).find((row) => row.id === keyId && row.revokedAt === null);
        if (!target) throw notFound('key', keyId, `GET ${keysRoute} lists this account's keys`);
        // The account would have no way in left: a new key first.
        const way = role === 'operator' ? 'operator' : 'customer';
        if (target.scope === way && (await countActiveKeys(tx, accountId, way)) <= 1) {
          throw failedPrecondition(`key ${keyId} is this account's last ${way} key`, `make another first (POST ${keysRoute}), then revoke this one`);
        }
        await revokeApiKey(tx, accountId, keyId);
      });
      keys.forget(keyId);
    },
  };
}

export type AccountKeys = ReturnType<typeof createAccountKeys>;
