import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Db } from '../../src/store/db.js';
import { openDb } from '../../src/store/db.js';

// Every database test runs on both engines Tessera supports, each time on a fresh database:
//   - PGlite in memory;
//   - the PostgreSQL server at TESSERA_TEST_DATABASE_URL, in a new schema dropped afterwards.
// Without that variable the server variant is skipped with a loud message, unless
// REQUIRE_SERVICES=1 (CI), where a missing or unreachable server fails the test instead.
//
//   forEachEngine('what it does', async (db, engine) => { ... });
//
// The callback gets an empty, unmigrated database: code under test (createEngine) or the test
// itself (migrate) applies the migrations.

export type EngineName = 'pglite' | 'postgres';

const DATABASE_URL = process.env.TESSERA_TEST_DATABASE_URL;
const REQUIRED = process.env.REQUIRE_SERVICES === '1';
let warned = false;

export async function openFreshDb(engine: EngineName): Promise<{ db: Db; drop: () => Promise<void>; schema?: string }> {
  if (engine === 'pglite') {
    const db = await openDb({});
    return { db, drop: () => db.close() };
  }
  if (!DATABASE_URL) throw new Error('TESSERA_TEST_DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test) and REQUIRE_SERVICES=1 requires the PostgreSQL server');
  const schema = `test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const db = await openDb({ databaseUrl: DATABASE_URL, schema, poolSize: 8 });
  return {
    db,
    schema,
    async drop() {
      try {
        await db.exec(`DROP SCHEMA ${schema} CASCADE`);
      } finally {
        await db.close();
      }
    },
  };
}

function skipReason(engine: EngineName): string | undefined {
  if (engine === 'pglite' || DATABASE_URL || REQUIRED) return undefined;
  if (!warned) {
    warned = true;
    console.error('\n*** TESSERA_TEST_DATABASE_URL is not set: the PostgreSQL-server variants of the database tests are SKIPPED. ***\n*** Set it (e.g. postgres://postgres@127.0.0.1:5432/test) or run .ci/run to include them.                 ***\n');
  }
  return 'TESSERA_TEST_DATABASE_URL is not set';
}

/** Tests that need the PostgreSQL server itself (several processes sharing one database). */
export function forPostgres(title: string, body: (db: Db, databaseUrl: string, schema: string) => Promise<void>, options: { timeout?: number } = {}): void {
  const skip = skipReason('postgres');
  test(`${title} [postgres]`, { timeout: options.timeout ?? 300_000, ...(skip ? { skip } : {}) }, async () => {
    const { db, drop, schema } = await openFreshDb('postgres');
    try {
      await body(db, DATABASE_URL!, schema!);
    } finally {
      await drop();
    }
  });
}

export function forEachEngine(title: string, body: (db: Db, engine: EngineName) => Promise<void>, options: { timeout?: number } = {}): void {
  for (const engine of ['pglite', 'postgres'] as const) {
    const skip = skipReason(engine);
    test(`${title} [${engine}]`, { timeout: options.timeout ?? 120_000, ...(skip ? { skip } : {}) }, async () => {
      const { db, drop } = await openFreshDb(engine);
      try {
        await body(db, engine);
      } finally {
        await drop();
      }
    });
  }
}
