import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import pg from 'pg';
import type { Db } from '../../src/store/db.js';
import { openDb } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';

// Every database test runs on both engines Tessera supports, each time on a fresh database:
//   - pglite:   PGlite in memory, thrown away after the test;
//   - postgres: the server at TESSERA_TEST_DATABASE_URL, in a new uniquely named schema that is
//               dropped (CASCADE) after the test.
//
//   forEachEngine('what it does', async (db, engine) => { ... });                      // empty database
//   forEachEngine('what it does', async (db, engine) => { ... }, { migrated: true });  // migrations applied
//   forPostgres('…', async (db, databaseUrl, schema) => { ... });  // needs the server itself (several processes)
//   await withFreshDb('pglite', async (db) => { ... });            // inside a test of your own
//
// forEachEngine defines one node:test test per engine, named "title [engine]". The default database
// is empty because code under test (createEngine) or the test itself (the migration test) applies
// the migrations; pass { migrated: true } to get it migrated.
//
// When the server is missing — TESSERA_TEST_DATABASE_URL unset, or set but not answering — its
// variants are skipped with a banner on stderr, so a laptop without PostgreSQL can still run the
// suite. Under REQUIRE_SERVICES=1 (CI) they fail instead, with the reason: a CI run that silently
// tested one engine would look green while testing half of what ships.

export type EngineName = 'pglite' | 'postgres';

export interface Engine {
  name: EngineName;
  available: boolean;
  /** Set when the engine is unavailable and its tests are skipped (REQUIRE_SERVICES is not 1). */
  skipReason?: string;
  /** Set when the engine is unavailable and its tests must fail (REQUIRE_SERVICES=1). */
  failReason?: string;
}

export interface FreshDbOptions {
  /** Apply the migrations before handing the database over. */
  migrated?: boolean;
}

const DATABASE_URL = process.env.TESSERA_TEST_DATABASE_URL || undefined;
const REQUIRED = process.env.REQUIRE_SERVICES === '1';

/** The URL without its password, for messages. */
function shown(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

/** Why the server cannot be used, or undefined when it answers. Asked once per test process. */
async function serverProblem(): Promise<string | undefined> {
  if (!DATABASE_URL) return 'TESSERA_TEST_DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)';
  // A short connect timeout: a firewalled host would otherwise hang the whole file before any test runs.
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return `the PostgreSQL server at TESSERA_TEST_DATABASE_URL=${shown(DATABASE_URL)} does not answer (${(error as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
}

// Top-level await: node:test needs to know whether to skip when a test is defined, not when it runs.
const postgresProblem = await serverProblem();

export const ENGINES: readonly Engine[] = [
  { name: 'pglite', available: true },
  postgresProblem === undefined
    ? { name: 'postgres', available: true }
    : REQUIRED
      ? { name: 'postgres', available: false, failReason: `${postgresProblem}, and REQUIRE_SERVICES=1 requires the PostgreSQL server` }
      : { name: 'postgres', available: false, skipReason: postgresProblem },
];

function engine(name: EngineName): Engine {
  return ENGINES.find((candidate) => candidate.name === name)!;
}

let warned = false;

/** node:test options for a test on `name`: skipped (after a banner, once per process) when its engine is missing. */
function testOptions(name: EngineName, timeout: number): { timeout: number; skip?: string } {
  const { skipReason } = engine(name);
  if (!skipReason) return { timeout };
  if (!warned) {
    warned = true;
    console.error(
      [
        '',
        '*** PostgreSQL-server variants of the database tests are SKIPPED:',
        `***   ${skipReason}.`,
        '*** Set TESSERA_TEST_DATABASE_URL to a server that answers (or run .ci/run) to include them;',
        '*** REQUIRE_SERVICES=1 turns this skip into a failure.',
        '',
      ].join('\n'),
    );
  }
  return { timeout, skip: skipReason };
}

/** Opens a fresh database on `name`; `drop` closes it and, on the server, drops its schema. */
export async function openFreshDb(name: EngineName, options: FreshDbOptions = {}): Promise<{ db: Db; drop: () => Promise<void>; schema?: string }> {
  const { available, skipReason, failReason } = engine(name);
  if (!available) throw new Error(failReason ?? skipReason);
  const fresh = name === 'pglite' ? await openPgliteDb() : await openSchemaDb(DATABASE_URL!);
  if (options.migrated) {
    try {
      await migrate(fresh.db);
    } catch (error) {
      await fresh.drop();
      throw error;
    }
  }
  return fresh;
}

async function openPgliteDb(): Promise<{ db: Db; drop: () => Promise<void> }> {
  const db = await openDb({});
  return { db, drop: () => db.close() };
}

export async function openSchemaDb(databaseUrl: string): Promise<{ db: Db; drop: () => Promise<void>; schema: string }> {
  // Time plus randomness: test files run in parallel processes against one database.
  const schema = `test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  // Eight connections: enough for the concurrency tests to race for real.
  const db = await openDb({ databaseUrl, schema, poolSize: 8 });
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

/** Runs `body` on a fresh database on `name` and drops it afterwards, whether `body` passed or threw. */
export async function withFreshDb(name: EngineName, body: (db: Db) => Promise<void>, options: FreshDbOptions = {}): Promise<void> {
  const { db, drop } = await openFreshDb(name, options);
  try {
    await body(db);
  } finally {
    await drop();
  }
}

/** One test per engine, each on its own fresh database. */
export function forEachEngine(
  title: string,
  body: (db: Db, engine: EngineName, t: TestContext) => Promise<void>,
  options: FreshDbOptions & { timeout?: number } = {},
): void {
  for (const { name } of ENGINES) {
    test(`${title} [${name}]`, testOptions(name, options.timeout ?? 120_000), (t) => withFreshDb(name, (db) => body(db, name, t), options));
  }
}

/** Tests that need the PostgreSQL server itself (several processes sharing one database). */
export function forPostgres(
  title: string,
  body: (db: Db, databaseUrl: string, schema: string) => Promise<void>,
  options: FreshDbOptions & { timeout?: number } = {},
): void {
  test(`${title} [postgres]`, testOptions('postgres', options.timeout ?? 300_000), async () => {
    const { db, drop, schema } = await openFreshDb('postgres', options);
    try {
      await body(db, DATABASE_URL!, schema!);
    } finally {
      await drop();
    }
  });
}
