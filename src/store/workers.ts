import type { Queryable } from './db.js';
import type { WorkerOffer } from './tasks.js';

// Worker agents. A worker registers once per start and is "connected" while it heartbeats.

/**
 * Registers (or re-registers) a worker under the token key it presents (null: a server's own
 * in-process worker). An id bound to another key is not taken over (false) unless that key was
 * revoked; nor is an id registered before ids were bound, or an in-process worker's.
 */
export async function upsertWorker(db: Queryable, worker: { id: string; keyId: string | null; name: string; slots: number; runtime?: unknown } & WorkerOffer): Promise<boolean> {
  const rows = await db.query(
    `INSERT INTO workers (id, name, region, slots, cpus, memory_gb, gpus, containers, host_images, runtime, key_id, account_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, region = EXCLUDED.region, slots = EXCLUDED.slots, cpus = EXCLUDED.cpus,
       memory_gb = EXCLUDED.memory_gb, gpus = EXCLUDED.gpus, containers = EXCLUDED.containers, host_images = EXCLUDED.host_images,
       runtime = EXCLUDED.runtime, key_id = EXCLUDED.key_id, account_id = EXCLUDED.account_id, last_seen_at = now()
     WHERE workers.key_id IS NOT DISTINCT FROM EXCLUDED.key_id
        OR EXISTS (SELECT 1 FROM api_keys k WHERE k.id = workers.key_id AND k.revoked_at IS NOT NULL)
     RETURNING id`,
    [worker.id, worker.name, worker.region, worker.slots, worker.cpus, worker.memoryGb, worker.gpus, worker.containers, worker.hostImages, worker.runtime === undefined ? null : JSON.stringify(worker.runtime), worker.keyId, worker.accountId ?? null],
  );
  return rows.length > 0;
}

/** The key a worker id is bound to; null when the id is not registered (or is in-process, or was registered before ids were bound). */
export async function workerKeyOf(db: Queryable, workerId: string): Promise<string | null> {
  const [row] = await db.query<{ key_id: string | null }>('SELECT key_id FROM workers WHERE id = $1', [workerId]);
  return row?.key_id ?? null;
}

/** Marks the worker as alive; false when it is not registered (the server lost it: register again). */
export async function touchWorker(db: Queryable, workerId: string): Promise<WorkerOffer | null> {
  const [row] = await db.query<{ region: string; cpus: number; memory_gb: number; gpus: string[]; containers: boolean; host_images: string[]; account_id: string | null }>(
    'UPDATE workers SET last_seen_at = now() WHERE id = $1 RETURNING region, cpus, memory_gb, gpus, containers, host_images, account_id',
    [workerId],
  );
  return row ? { region: row.region, cpus: row.cpus, memoryGb: row.memory_gb, gpus: row.gpus, containers: row.containers, hostImages: row.host_images, accountId: row.account_id } : null;
}

export interface UnservedTask {
  jobId: string;
  kind: string;
  chunkIndex: number;
  minCpu: number;
  minMemoryGb: number;
  gpus: string[] | null;
  regionWhitelist: string[] | null;
  regionBlacklist: string[];
  image: string | null;
  privateOnly: boolean;
}

/**
 * Tasks queued longer than `graceSeconds` that no worker seen within `liveSeconds` could run
 * (its pool, region, cores, memory, GPUs): one per job, so the job can say why it is not moving.
 * A retry waiting out its back-off is not waiting for a worker, so it is not counted until due.
 */
export async function listUnservedTasks(db: Queryable, graceSeconds: number, liveSeconds: number): Promise<UnservedTask[]> {
  const rows = await db.query<{ job_id: string; kind: string; chunk_index: number; min_cpu: number; min_memory_gb: number; gpus: string[] | null; region_whitelist: string[] | null; region_blacklist: string[]; image: string | null; private_only: boolean }>(
    `SELECT DISTINCT ON (t.job_id) t.job_id, t.kind, t.chunk_index, t.min_cpu, t.min_memory_gb, t.gpus, t.region_whitelist, t.region_blacklist, t.image, t.private_only
       FROM tasks t
      WHERE t.state = 'queued' AND t.created_at < now() - make_interval(secs => $1)
        AND (t.not_before IS NULL OR t.not_before <= now())
        AND NOT EXISTS (
          SELECT 1 FROM workers w
           WHERE w.last_seen_at > now() - make_interval(secs => $2)
             AND w.cpus >= t.min_cpu AND w.memory_gb >= t.min_memory_gb
             AND (t.gpus IS NULL OR t.gpus && w.gpus)
             AND (t.region_whitelist IS NULL OR w.region = ANY(t.region_whitelist))
             AND NOT (w.region = ANY(t.region_blacklist))
             AND (t.image IS NULL OR w.containers OR t.image LIKE ANY(w.host_images))
             AND ((w.account_id IS NULL AND NOT t.private_only) OR w.account_id = t.account_id))
      ORDER BY t.job_id, t.id
      LIMIT 100`,
    [graceSeconds, liveSeconds],
  );
  return rows.map((row) => ({ jobId: row.job_id, kind: row.kind, chunkIndex: row.chunk_index, minCpu: row.min_cpu, minMemoryGb: row.min_memory_gb, gpus: row.gpus, regionWhitelist: row.region_whitelist, regionBlacklist: row.region_blacklist, image: row.image, privateOnly: row.private_only }));
}
