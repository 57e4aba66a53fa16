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

export async function findApiKeyByHash(db: Queryable, keyHash: string): Promise<{ accountId: string; scope: KeyScope } | null> {
  const [row] = await db.query<{ account_id: string; scope: KeyScope }>(
    'SELECT account_id, scope FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
    [keyHash],
  );
  return row ? { accountId: row.account_id, scope: row.scope } : null;
}
