import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

// The one seam between Tessera's SQL and the two PostgreSQL engines it runs on: embedded PGlite
// (one in-process connection) and a PostgreSQL server (a pool). Everything above this file sees
// the same two calls, so the same SQL runs on both.

export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Row[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `work` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls `onNotify` for each NOTIFY on `channel` (PostgreSQL server: one dedicated connection,
   * reconnected if it drops). PGlite has one process, where in-process signals already suffice.
   */
  listen?(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface DbOptions {
  /** postgres://… to use a server; otherwise PGlite. */
  databaseUrl?: string | undefined;
  /** PGlite data folder; omitted means in memory. */
  dataDir?: string | undefined;
  /** Server only: a schema to create and use (tests get a fresh one each). */
  schema?: string | undefined;
  poolSize?: number;
  /** Server only: parameterised queries as named prepared statements (default true). */
  preparedStatements?: boolean;
}

export async function openDb(options: DbOptions): Promise<Db> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options) : openPglite(options.dataDir);
}

async function openPglite(dataDir: string | undefined): Promise<Db> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const lite = dataDir ? new PGlite(dataDir) : new PGlite();
  await lite.waitReady;
  await lite.exec(`SET TimeZone = 'UTC'`);
  const query = async <Row>(sql: string, params: unknown[] = []): Promise<Row[]> => (await lite.query<Row>(sql, params)).rows;
  return {
    kind: 'pglite',
    query,
    // PGlite serialises everything on its single connection: a transaction holds it, so other
    // queries wait for the commit, which gives the same isolation a server would.
    exec: async (sql) => void (await lite.exec(sql)),
    transaction: (work) =>
      lite.transaction((tx) =>
        work({
          query: async <Row>(sql: string, params: unknown[] = []) => (await tx.query<Row>(sql, params)).rows,
          exec: async (sql) => void (await tx.exec(sql)),
        }),
      ),
    close: () => lite.close(),
  };
}

/** How many distinct statement texts a process prepares by name; later ones run unnamed. */
const MAX_PREPARED_STATEMENTS = 1000;

interface Statements {
  /** Runs `send`, and once unnamed if the named statement's plan no longer fits the tables. */
  run<T>(sql: string, params: unknown[], send: (query: pg.QueryConfig) => Promise<T>, retry: boolean): Promise<T>;
}

/**
 * Every parameterised query runs as a named prepared statement: a connection parses and
 * rewrites each text once, then only binds and executes it (graphile-worker does the same; GET
 * job cost PostgreSQL 0.32–0.39 → 0.21–0.24 ms of CPU, measured). PostgreSQL plans it for each
 * call's values, or after five calls once for all values when that plan costs no more (its
 * default plan_cache_mode; the store test runs the lease on such a generic plan). The name is a counter per
 * distinct text, so one name never means two texts. Texts without parameters stay unnamed (they
 * may hold several statements, which a prepared statement cannot), and the number of names is
 * bounded in case some caller builds its text from data. A migration that changes a column's type
 * under a running server makes PostgreSQL refuse that server's statements on the table ("cached
 * plan must not change result type"): such a text runs unnamed from then on, and a query outside
 * a transaction is sent again once.
 */
function statements(enabled: boolean): Statements {
  const names = new Map<string, string>();
  const unnamed = new Set<string>();
  let counter = 0;
  const config = (sql: string, params: unknown[]): pg.QueryConfig => {
    if (!enabled || params.length === 0 || unnamed.has(sql)) return { text: sql, values: params };
    let name = names.get(sql);
    if (name === undefined && names.size < MAX_PREPARED_STATEMENTS) {
      name = `tessera_${++counter}`;
      names.set(sql, name);
    }
    return name === undefined ? { text: sql, values: params } : { name, text: sql, values: params };
  };
  return {
    async run(sql, params, send, retry) {
      try {
        return await send(config(sql, params));
      } catch (error) {
        if (!names.has(sql) || !isStalePlan(error)) throw error;
        names.delete(sql);
        unnamed.add(sql);
        if (!retry) throw error;
        return send({ text: sql, values: params });
      }
    },
  };
}

function isStalePlan(error: unknown): boolean {
  return (error as { code?: string }).code === '0A000' && /cached plan must not change result type/.test((error as Error).message);
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

async function openPostgres(databaseUrl: string, options: DbOptions): Promise<Db> {
  const schema = options.schema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) throw new Error(`schema name ${JSON.stringify(schema)} must match ${SCHEMA_NAME}`);
  const settings = ['-c TimeZone=UTC', ...(schema ? [`-c search_path=${schema}`] : [])].join(' ');
  const prepared = statements(options.preparedStatements ?? true);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: options.poolSize ?? 10, options: settings });
  // An idle client losing its connection (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  if (schema) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  const query = async <Row>(sql: string, params: unknown[] = []): Promise<Row[]> =>
    (await prepared.run(sql, params, (config) => pool.query(config), true)).rows as Row[];
  return {
    kind: 'postgres',
    query,
    exec: async (sql) => void (await pool.query(sql)),
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await work({
          // No second try inside a transaction: the failed statement has aborted it.
          query: async <Row>(sql: string, params: unknown[] = []) => (await prepared.run(sql, params, (config) => client.query(config), false)).rows as Row[],
          exec: async (sql) => void (await client.query(sql)),
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async listen(channel, onNotify) {
      if (!/^[a-z_]+$/.test(channel)) throw new Error(`channel name ${JSON.stringify(channel)} must be lower-case letters and _`);
      let client: pg.Client | undefined;
      let closed = false;
      const connect = async (): Promise<void> => {
        const next = new pg.Client({ connectionString: databaseUrl, options: settings });
        next.on('notification', () => onNotify());
        // A dropped connection is re-opened; until then leasing falls back to polling.
        next.on('error', () => {
          if (!closed) setTimeout(() => void connect().catch(() => {}), 1000).unref();
        });
        await next.connect();
        await next.query(`LISTEN ${channel}`);
        client = next;
      };
      await connect();
      return async () => {
        closed = true;
        await client?.end().catch(() => {});
      };
    },
    close: () => pool.end(),
  };
}
