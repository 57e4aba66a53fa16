import type { Queryable } from './db.js';

/** customer: the customer API; worker: /v1/worker (a shared worker's, or an account's own); operator: /v1/operator. */
export type KeyScope = 'customer' | 'worker' | 'operator';
export type AccountRole = 'customer' | 'operator';

/** Customer accounts (the operator's own is not one). */
export async function countAccounts(db: Queryable): Promise<number> {
  const [row] = await db.query<{ count: number }>(`SELECT count(*)::int AS count FROM accounts WHERE role = 'customer'`);
  return row?.count ?? 0;
}

export async function insertAccount(db: Queryable, accountId: string, options: { role?: AccountRole; name?: string } = {}): Promise<void> {
  await db.query('INSERT INTO accounts (id, role, name) VALUES ($1, $2, $3)', [accountId, options.role ?? 'customer', options.name ?? '']);
}

/** Customer accounts' ids, oldest first. */
export async function listAccountIds(db: Queryable): Promise<string[]> {
  return (await db.query<{ id: string }>(`SELECT id FROM accounts WHERE role = 'customer' ORDER BY created_at, id`)).map((row) => row.id);
}

export async function findOperatorAccount(db: Queryable): Promise<string | null> {
  const [row] = await db.query<{ id: string }>(`SELECT id FROM accounts WHERE role = 'operator' ORDER BY created_at LIMIT 1`);
  return row?.id ?? null;
}

/** Per-account limits; null is none. */
export interface Quotas {
  /** Tasks of the account running on shared workers at once. */
  maxSharedTasks: number | null;
  /** Bytes the account's jobs and components hold in the blob store. */
  maxStoredBytes: number | null;
  /** Jobs the account may create in any minute. */
  maxJobsPerMinute: number | null;
}

export interface AccountRow extends Quotas {
  id: string;
  name: string;
  role: AccountRole;
  createdAt: Date;
  disabledAt: Date | null;
}

type AccountDbRow = { id: string; name: string; role: AccountRole; created_at: Date; disabled_at: Date | null; max_shared_tasks: number | null; max_stored_bytes: string | number | null; max_jobs_per_minute: number | null };
const ACCOUNT_COLUMNS = 'id, name, role, created_at, disabled_at, max_shared_tasks, max_stored_bytes, max_jobs_per_minute';
const accountOf = (row: AccountDbRow): AccountRow => ({
  id: row.id, name: row.name, role: row.role, createdAt: row.created_at, disabledAt: row.disabled_at,
  maxSharedTasks: row.max_shared_tasks, maxStoredBytes: row.max_stored_bytes === null ? null : Number(row.max_stored_bytes), maxJobsPerMinute: row.max_jobs_per_minute,
});

export async function getAccount(db: Queryable, accountId: string): Promise<AccountRow | null> {
  const [row] = await db.query<AccountDbRow>(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = $1`, [accountId]);
  return row ? accountOf(row) : null;
}

/** Customer accounts, oldest first, a page at a time. */
export async function listAccounts(db: Queryable, limit: number, offset: number): Promise<AccountRow[]> {
  const rows = await db.query<AccountDbRow>(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE role = 'customer' ORDER BY created_at, id LIMIT $1 OFFSET $2`, [limit, offset]);
  return rows.map(accountOf);
}

/** Sets the quotas given (undefined: left as they are; null: none). */
export async function updateQuotas(db: Queryable, accountId: string, quotas: Partial<Quotas>): Promise<void> {
  await db.query(
    `UPDATE accounts SET max_shared_tasks = CASE WHEN $2 THEN $3::int ELSE max_shared_tasks END,
                         max_stored_bytes = CASE WHEN $4 THEN $5::bigint ELSE max_stored_bytes END,
                         max_jobs_per_minute = CASE WHEN $6 THEN $7::int ELSE max_jobs_per_minute END
      WHERE id = $1`,
    [accountId, quotas.maxSharedTasks !== undefined, quotas.maxSharedTasks ?? null, quotas.maxStoredBytes !== undefined, quotas.maxStoredBytes ?? null, quotas.maxJobsPerMinute !== undefined, quotas.maxJobsPerMinute ?? null],
  );
}

/** Disables (or enables again) a customer account; false when there is no such account. */
export async function setAccountDisabled(db: Queryable, accountId: string, disabled: boolean): Promise<boolean> {
  const rows = await db.query(`UPDATE accounts SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END WHERE id = $1 AND role = 'customer' RETURNING id`, [accountId, disabled]);
  return rows.length > 0;
}

/** What an account uses now, for the operator's list and the quota checks. */
export interface AccountUsage {
  storedBytes: number;
  sharedTasks: number;
  jobsLastMinute: number;
  runningJobs: number;
}

export async function accountUsage(db: Queryable, accountId: string): Promise<AccountUsage> {
  const [row] = await db.query<{ stored: string; shared: number; recent: number; running: number }>(
    `SELECT (SELECT coalesce(sum(stored_bytes), 0) FROM jobs WHERE account_id = $1 AND blobs_deleted_at IS NULL)
              + (SELECT coalesce(sum(archive_size), 0) FROM components WHERE owner = $1) AS stored,
            (SELECT count(*)::int FROM tasks WHERE account_id = $1 AND state = 'leased' AND lease_expires_at IS NOT NULL AND lease_shared) AS shared,
            (SELECT count(*)::int FROM jobs WHERE account_id = $1 AND created_at > now() - interval '1 minute') AS recent,
            (SELECT count(*)::int FROM jobs WHERE account_id = $1 AND deleted_at IS NULL
                AND state <> ALL (ARRAY['JOB_STATE_NEW', 'JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'])) AS running`,
    [accountId],
  );
  return { storedBytes: Number(row?.stored ?? 0), sharedTasks: row?.shared ?? 0, jobsLastMinute: row?.recent ?? 0, runningJobs: row?.running ?? 0 };
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
  /** The account's role: a worker token of the operator's serves every account, a customer's only its own. */
  role: AccountRole;
}

type KeyDbRow = { id: string; account_id: string; scope: KeyScope; role: AccountRole };
const keyOf = (row: KeyDbRow): FoundKey => ({ id: row.id, accountId: row.account_id, scope: row.scope, role: row.role });

/** A key that works: not revoked, of an account that is not disabled; found by its hash or its id. */
async function findWorkingKey(db: Queryable, by: 'key_hash' | 'id', value: string): Promise<FoundKey | null> {
  const [row] = await db.query<KeyDbRow>(
    `SELECT k.id, k.account_id, k.scope, a.role FROM api_keys k JOIN accounts a ON a.id = k.account_id
      WHERE k.${by} = $1 AND k.revoked_at IS NULL AND a.disabled_at IS NULL`,
    [value],
  );
  return row ? keyOf(row) : null;
}

export function findApiKeyByHash(db: Queryable, keyHash: string): Promise<FoundKey | null> {
  return findWorkingKey(db, 'key_hash', keyHash);
}

/** Why a key that exists does not work: when it was revoked, or its account disabled. Null when there is no such key. */
export async function keyRefusal(db: Queryable, keyHash: string): Promise<{ revokedAt: Date | null; disabledAt: Date | null } | null> {
  const [row] = await db.query<{ revoked_at: Date | null; disabled_at: Date | null }>(
    'SELECT k.revoked_at, a.disabled_at FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = $1',
    [keyHash],
  );
  return row ? { revokedAt: row.revoked_at, disabledAt: row.disabled_at } : null;
}

/** A key that works, by its id (an access token names the key it was made from). */
export function findActiveApiKey(db: Queryable, keyId: string): Promise<FoundKey | null> {
  return findWorkingKey(db, 'id', keyId);
}

/** The ids of an account's keys that are not revoked (to forget them at once when it is disabled). */
export async function listActiveKeyIds(db: Queryable, accountId: string): Promise<string[]> {
  return (await db.query<{ id: string }>('SELECT id FROM api_keys WHERE account_id = $1 AND revoked_at IS NULL', [accountId])).map((row) => row.id);
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
