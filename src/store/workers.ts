import type { Queryable } from './db.js';
import type { WorkerOffer } from './tasks.js';

// Worker agents. A worker registers once per start and is "connected" while it heartbeats.

export interface WorkerRow extends WorkerOffer {
  id: string;
  name: string;
  slots: number;
  lastSeenAt: Date;
}

export async function upsertWorker(db: Queryable, worker: { id: string; name: string; slots: number } & WorkerOffer): Promise<void> {
  await db.query(
    `INSERT INTO workers (id, name, region, slots, cpus, memory_gb, gpus) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, region = EXCLUDED.region, slots = EXCLUDED.slots, cpus = EXCLUDED.cpus,
       memory_gb = EXCLUDED.memory_gb, gpus = EXCLUDED.gpus, last_seen_at = now()`,
    [worker.id, worker.name, worker.region, worker.slots, worker.cpus, worker.memoryGb, worker.gpus],
  );
}

/** Marks the worker as alive; false when it is not registered (the server lost it: register again). */
export async function touchWorker(db: Queryable, workerId: string): Promise<WorkerOffer | null> {
  const [row] = await db.query<{ region: string; cpus: number; memory_gb: number; gpus: string[] }>(
    'UPDATE workers SET last_seen_at = now() WHERE id = $1 RETURNING region, cpus, memory_gb, gpus',
    [workerId],
  );
  return row ? { region: row.region, cpus: row.cpus, memoryGb: row.memory_gb, gpus: row.gpus } : null;
}

/** Workers seen within the last `seconds`. */
export async function listLiveWorkers(db: Queryable, seconds: number): Promise<WorkerRow[]> {
  const rows = await db.query<{ id: string; name: string; region: string; slots: number; cpus: number; memory_gb: number; gpus: string[]; last_seen_at: Date }>(
    `SELECT id, name, region, slots, cpus, memory_gb, gpus, last_seen_at FROM workers
      WHERE last_seen_at > now() - make_interval(secs => $1) ORDER BY name, id`,
    [seconds],
  );
  return rows.map((row) => ({ id: row.id, name: row.name, region: row.region, slots: row.slots, cpus: row.cpus, memoryGb: row.memory_gb, gpus: row.gpus, lastSeenAt: row.last_seen_at }));
}
