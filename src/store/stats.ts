import type { Queryable } from './db.js';

// Whole-deployment counts for /metrics and the dashboard's workers page.

export async function countJobsByState(db: Queryable): Promise<{ state: string; count: number }[]> {
  return db.query<{ state: string; count: number }>('SELECT state, count(*)::int AS count FROM jobs WHERE deleted_at IS NULL GROUP BY state ORDER BY state');
}

export async function countQueuedTasks(db: Queryable): Promise<number> {
  // The partial index tasks_queue holds exactly these rows.
  const [row] = await db.query<{ count: number }>(`SELECT count(*)::int AS count FROM tasks WHERE state = 'queued'`);
  return row?.count ?? 0;
}

export async function countConnectedWorkers(db: Queryable, withinSeconds: number): Promise<number> {
  const [row] = await db.query<{ count: number }>('SELECT count(*)::int AS count FROM workers WHERE last_seen_at > now() - make_interval(secs => $1)', [withinSeconds]);
  return row?.count ?? 0;
}

export interface WorkerRow {
  id: string;
  name: string;
  region: string;
  slots: number;
  cpus: number;
  memoryGb: number;
  gpus: string[];
  startedAt: Date;
  lastSeenAt: Date;
  runningTasks: number;
  /** What the worker said of its runtimes (sandbox, limits, network, containers, images); null from older workers. */
  runtime: Record<string, unknown> | null;
  /** The account whose own pool it is in; null: a shared worker. */
  accountId: string | null;
}

/**
 * Workers seen in the last `withinSeconds`, with the tasks each holds now: one account's own
 * (`pool` its id), or every worker (`pool` 'all', the operator's view).
 */
export async function listWorkers(db: Queryable, withinSeconds: number, pool: string): Promise<WorkerRow[]> {
  const rows = await db.query<{ id: string; name: string; region: string; slots: number; cpus: number; memory_gb: number; gpus: string[]; started_at: Date; last_seen_at: Date; running: number; runtime: Record<string, unknown> | string | null; account_id: string | null }>(
    // Leased rows are few and in a partial index (tasks_lease_expiry, which needs the expiry named:
    // every leased task has one): count them once, grouped.
    `SELECT w.id, w.name, w.region, w.slots, w.cpus, w.memory_gb, w.gpus, w.started_at, w.last_seen_at, COALESCE(l.running, 0)::int AS running, w.runtime, w.account_id
       FROM workers w
       LEFT JOIN (SELECT lease_owner, count(*) AS running FROM tasks WHERE state = 'leased' AND lease_expires_at IS NOT NULL GROUP BY lease_owner) l ON l.lease_owner = w.id
      WHERE w.last_seen_at > now() - make_interval(secs => $1) AND ($2 = 'all' OR w.account_id = $2) ORDER BY w.name, w.id`,
    [withinSeconds, pool],
  );
  return rows.map((row) => ({ id: row.id, name: row.name, region: row.region, slots: row.slots, cpus: row.cpus, memoryGb: row.memory_gb, gpus: row.gpus, startedAt: row.started_at, lastSeenAt: row.last_seen_at, runningTasks: row.running, runtime: typeof row.runtime === 'string' ? (JSON.parse(row.runtime) as Record<string, unknown>) : row.runtime, accountId: row.account_id }));
}

/** The shared fleet in numbers only (what an account may know of machines that are not its own). */
export async function sharedFleet(db: Queryable, withinSeconds: number): Promise<{ workers: number; slots: number }> {
  const [row] = await db.query<{ workers: number; slots: number }>(
    'SELECT count(*)::int AS workers, coalesce(sum(slots), 0)::int AS slots FROM workers WHERE last_seen_at > now() - make_interval(secs => $1) AND account_id IS NULL',
    [withinSeconds],
  );
  return { workers: row?.workers ?? 0, slots: row?.slots ?? 0 };
}
