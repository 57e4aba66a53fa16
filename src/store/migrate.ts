import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../config/config.js';
import type { Db } from './db.js';

export const MIGRATIONS_DIR = path.join(packageRoot(), 'migrations');

// Any 64-bit number works; replicas starting together take this lock so only one applies migrations.
const MIGRATION_LOCK = 7_405_122_431;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => ({ version: Number(file.slice(0, 4)), name: file, sql: readFileSync(path.join(dir, file), 'utf8') }));
}

/** Applies the migrations not yet applied, all in one transaction. Returns the names applied. */
export async function migrate(db: Db, migrations = listMigrations()): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const applied = new Set((await tx.query<{ version: number }>('SELECT version FROM schema_migrations')).map((row) => row.version));
    const names: string[] = [];
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
      names.push(migration.name);
    }
    return names;
  });
}

/**
 * The migrations of this version that the database has not applied (all of them on an empty one),
 * without applying any: for a process that must wait until another has migrated.
 */
export async function pendingMigrations(db: Db, migrations = listMigrations()): Promise<Migration[]> {
  const [table] = await db.query<{ name: string | null }>(`SELECT to_regclass('schema_migrations')::text AS name`);
  if (!table?.name) return migrations;
  const applied = new Set((await db.query<{ version: number }>('SELECT version FROM schema_migrations')).map((row) => row.version));
  return migrations.filter((migration) => !applied.has(migration.version));
}

/**
 * A plain-text description of the schema (tables, columns, indexes) in a stable order. A test
 * compares it with the checked-in migrations/schema.txt so a schema change is always visible in review.
 */
export async function describeSchema(db: Db): Promise<string> {
  const columns = await db.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string; column_default: string | null }>(
    `SELECT table_name, column_name, data_type, is_nullable, column_default
       FROM information_schema.columns
      WHERE table_schema = current_schema()
      ORDER BY table_name, ordinal_position`,
  );
  const indexes = await db.query<{ indexname: string; indexdef: string }>(
    `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname`,
  );
  const lines: string[] = [];
  let table = '';
  for (const column of columns) {
    if (column.table_name !== table) {
      table = column.table_name;
      lines.push(`table ${table}`);
    }
    const nullable = column.is_nullable === 'YES' ? '' : ' not null';
    const fallback = column.column_default ? ` default ${column.column_default.replace(/^nextval\('(?:[a-z0-9_]+\.)?([a-z0-9_]+)'::regclass\)$/, "nextval('$1')")}` : '';
    lines.push(`  ${column.column_name} ${column.data_type}${nullable}${fallback}`);
  }
  for (const index of indexes) {
    // Index definitions name the schema; drop it so the description is the same in every schema.
    lines.push(`index ${index.indexname}: ${index.indexdef.replace(/ ON [a-z0-9_]+\./, ' ON ')}`);
  }
  return lines.join('\n') + '\n';
}
