import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { TesseraError } from '../domain/errors.js';

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

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * SQLSTATEs and socket errors that mean the database is away (restarting, shut down, not yet
 * accepting, the connection cut), not that a statement was wrong: the caller may try again soon.
 */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300']);
const UNAVAILABLE_SOCKET = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)$/;

export function databaseUnavailable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  return (code !== undefined && (UNAVAILABLE_STATES.has(code) || UNAVAILABLE_SOCKET.test(code))) || /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message ?? '');
}

/** The database being away becomes UNAVAILABLE (HTTP 503, code 14) with a hint to retry; other errors are left as they are. */
function whenAway(error: unknown): unknown {
  if (!databaseUnavailable(error)) return error;
  return new TesseraError('UNAVAILABLE', `the database is unavailable: ${(error as Error).message}`, { hint: 'retry in a few seconds; Tessera reconnects on its own', cause: error });
}

async function openPostgres(databaseUrl: string, options: DbOptions): Promise<Db> {
  const schema = options.schema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) throw new Error(`schema name ${JSON.stringify(schema)} must match ${SCHEMA_NAME}`);
  const settings = ['-c TimeZone=UTC', ...(schema ? [`-c search_path=${schema}`] : [])].join(' ');
  const pool = new pg.Pool({ connectionString: databaseUrl, max: options.poolSize ?? 10, options: settings, connectionTimeoutMillis: 10_000 });
  // An idle client losing its connection (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  if (schema) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  const query = async <Row>(sql: string, params: unknown[] = []): Promise<Row[]> => {
    try {
      return (await pool.query(sql, params)).rows as Row[];
    } catch (error) {
      throw whenAway(error);
    }
  };
  return {
    kind: 'postgres',
    query,
    exec: async (sql) => void (await query(sql)),
    async transaction(work) {
      const client = await pool.connect().catch((error: unknown) => {
        throw whenAway(error);
      });
      // A checked-out client whose connection dies (a database restart) emits 'error': with no
      // listener that ended the process. The statement under way fails instead, and the broken
      // client is not handed out again.
      let broken: Error | undefined;
      const onError = (error: Error) => void (broken = error);
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await work({
          query: async <Row>(sql: string, params: unknown[] = []) => (await client.query(sql, params)).rows as Row[],
          exec: async (sql) => void (await client.query(sql)),
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        if (databaseUnavailable(error)) broken ??= error as Error;
        else await client.query('ROLLBACK').catch(() => {});
        throw whenAway(error);
      } finally {
        client.off('error', onError);
        client.release(broken);
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
          if (!closed) reconnect(1000);
        });
        try {
          await next.connect();
          await next.query(`LISTEN ${channel}`);
        } catch (error) {
          await next.end().catch(() => {});
          throw error;
        }
        client = next;
      };
      /** Tries again until the database is back (every try at most 30 s after the last). */
      const reconnect = (delayMs: number) => {
        setTimeout(() => {
          if (closed) return;
          connect().catch(() => reconnect(Math.min(30_000, delayMs * 2)));
        }, delayMs).unref();
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
