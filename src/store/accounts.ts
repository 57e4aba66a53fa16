import type { Queryable } from './db.js';

export type KeyScope = 'customer' | 'worker';

export async function countAccounts(db: Queryable): Promise<number> {
  const [row] = await db.query<{ count: number }>('SELECT count(*)::int AS count FROM accounts');
  return row?.count ?? 0;
}

export async function insertAccount(db: Queryable, accountId: string): Promise<void> {
  await db.query('INSERT INTO accounts (id) VALUES ($1)', [accountId]);
}

export async function listAccountIds(db: Queryable): Promise<string[]> {
  return (await db.query<{ id: string }>('SELECT id FROM accounts ORDER BY created_at, id')).map((row) => row.id);
}

export async function insertApiKey(
  db: Queryable,
  key: { id: string; accountId: string; keyHash: string; keyPrefix: string; scope: KeyScope },
): Promise<void> {
  await db.query('INSERT INTO api_keys (id, account_id, key_hash, key_prefix, scope) VALUES ($1, $2, $3, $4, $5)', [
    key.id,
    key.accountId,
    key.keyHash,
    key.keyPrefix,
    key.scope,
  ]);
}

export interface FoundKey {
  id: string;
  accountId: string;
  scope: KeyScope;
}

export async function findApiKeyByHash(db: Queryable, keyHash: string): Promise<FoundKey | null> {
  const [row] = await db.query<{ id: string; account_id: string; scope: KeyScope }>(
    'SELECT id, account_id, scope FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
    [keyHash],
  );
  return row ? { id: row.id, accountId: row.account_id, scope: row.scope } : null;
}

/** When the key with this hash was revoked; null when there is no such key or it is active. */
export async function keyRevokedAt(db: Queryable, keyHash: string): Promise<Date | null> {
  const [row] = await db.query<{ revoked_at: Date | null }>('SELECT revoked_at FROM api_keys WHERE key_hash = $1', [keyHash]);
  return row?.revoked_at ?? null;
}

/** A key that is not revoked, by its id (an access token names the key it was made from). */
export async function findActiveApiKey(db: Queryable, keyId: string): Promise<FoundKey | null> {
  const [row] = await db.query<{ id: string; account_id: string; scope: KeyScope }>('SELECT id, account_id, scope FROM api_keys WHERE id = $1 AND revoked_at IS NULL', [keyId]);
  return row ? { id: row.id, accountId: row.account_id, scope: row.scope } : null;
}

export interface KeyRow {
  id: string;
  prefix: string;
  scope: KeyScope;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** An account's keys, newest first: never their secrets (only a hash is stored) but their first characters. */
export async function listApiKeys(db: Queryable, accountId: string): Promise<KeyRow[]> {
  const rows = await db.query<{ id: string; key_prefix: string; scope: KeyScope; created_at: Date; last_used_at: Date | null; revoked_at: Date | null }>(
    'SELECT id, key_prefix, scope, created_at, last_used_at, revoked_at FROM api_keys WHERE account_id = $1 ORDER BY created_at DESC, id',
    [accountId],
  );
  return rows.map((row) => ({ id: row.id, prefix: row.key_prefix, scope: row.scope, createdAt: row.created_at, lastUsedAt: row.last_used_at, revokedAt: row.revoked_at }));
}

/** Revokes one of an account's keys; false when it has no such key not yet revoked. */
export async function revokeApiKey(db: Queryable, accountId: string, keyId: string): Promise<boolean> {
  const rows = await db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL RETURNING id', [keyId, accountId]);
  return rows.length > 0;
}

export async function countActiveKeys(db: Queryable, accountId: string, scope: KeyScope): Promise<number> {
  const [row] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM api_keys WHERE account_id = $1 AND scope = $2 AND revoked_at IS NULL', [accountId, scope]);
  return row?.n ?? 0;
}

/** Notes a key's use, at most once a minute. */
export async function touchApiKey(db: Queryable, keyId: string): Promise<void> {
  await db.query(`UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, [keyId]);
}
