import { randomBytes } from 'node:crypto';
import pg from 'pg';

// A fresh, uniquely named schema per peer benchmark, dropped afterwards, so runs never see each
// other's jobs (graphile-worker and pg-boss create their tables inside the schema they are given).

export function schemaName(prefix: string): string {
  return `bench_${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

export async function serverVersion(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  } finally {
    await client.end();
  }
}
