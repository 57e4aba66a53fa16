import type { Queryable } from './db.js';

// Account secrets as stored: the secret key only ever sealed (src/engine/secrets.ts seals and opens it).

export interface StoredSecret {
  accountId: string;
  secretType: string;
  id: string;
  name: string;
  accessKey: string;
  sealedKey: string;
  params: Record<string, unknown>;
  expiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface SecretRow {
  account_id: string;
  secret_type: string;
  id: string;
  name: string;
  access_key: string;
  sealed_key: string;
  params: Record<string, unknown>;
  expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'account_id, secret_type, id, name, access_key, sealed_key, params, expires_at, created_at, updated_at';

function rowToSecret(row: SecretRow): StoredSecret {
  return {
    accountId: row.account_id,
    secretType: row.secret_type,
    id: row.id,
    name: row.name,
    accessKey: row.access_key,
    sealedKey: row.sealed_key,
    params: row.params,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Creates the secret, or replaces the one with the same type and id. */
export async function upsertSecret(db: Queryable, secret: Omit<StoredSecret, 'createdAt' | 'updatedAt'>): Promise<StoredSecret> {
  const [row] = await db.query<SecretRow>(
    `INSERT INTO secrets (account_id, secret_type, id, name, access_key, sealed_key, params, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
     ON CONFLICT (account_id, secret_type, id) DO UPDATE
       SET name = EXCLUDED.name, access_key = EXCLUDED.access_key, sealed_key = EXCLUDED.sealed_key,
           params = EXCLUDED.params, expires_at = EXCLUDED.expires_at, updated_at = now()
     RETURNING ${COLUMNS}`,
    [secret.accountId, secret.secretType, secret.id, secret.name, secret.accessKey, secret.sealedKey, JSON.stringify(secret.params), secret.expiresAt],
  );
  return rowToSecret(row!);
}

export async function listSecrets(db: Queryable, accountId: string): Promise<StoredSecret[]> {
  const rows = await db.query<SecretRow>(`SELECT ${COLUMNS} FROM secrets WHERE account_id = $1 ORDER BY secret_type, id`, [accountId]);
  return rows.map(rowToSecret);
}

export async function findSecret(db: Queryable, accountId: string, secretType: string, id: string): Promise<StoredSecret | null> {
  const [row] = await db.query<SecretRow>(`SELECT ${COLUMNS} FROM secrets WHERE account_id = $1 AND secret_type = $2 AND id = $3`, [accountId, secretType, id]);
  return row ? rowToSecret(row) : null;
}

export async function deleteSecret(db: Queryable, accountId: string, secretType: string, id: string): Promise<boolean> {
  const rows = await db.query('DELETE FROM secrets WHERE account_id = $1 AND secret_type = $2 AND id = $3 RETURNING id', [accountId, secretType, id]);
  return rows.length > 0;
}
