import type { LeasedTask, WorkerOffer } from '../store/tasks.js';
import { leaseTasks, sharedQuotaRoom } from '../store/tasks.js';
import type { EngineDeps } from './deps.js';

// Leasing with the operator's quota of tasks on shared workers (accounts.max_shared_tasks). With
// no quota set anywhere a lease is the plain statement. With quotas, the shared workers' leases
// are serialised by a lock: each reads every limited account's room after the previous lease
// committed, so concurrent calls never take the same last place. Private workers never count.

/** How long whether any quota exists is remembered: a quota set takes effect within this. */
const QUOTAS_CACHE_MS = 1000;
const SHARED_LEASE_LOCK = 7264002;

export function createQuotaLeasing(deps: EngineDeps) {
  const { db, config } = deps;
  let known: { at: number; any: Promise<boolean> } | undefined;
  // A quota set on this server applies to the next lease here.
  deps.signals.on('quotas', () => (known = undefined));

  function anyQuota(): Promise<boolean> {
    if (known && Date.now() - known.at < QUOTAS_CACHE_MS) return known.any;
    const any = db.query('SELECT 1 FROM accounts WHERE max_shared_tasks IS NOT NULL LIMIT 1').then((rows) => rows.length > 0);
    any.catch(() => (known = undefined));
    known = { at: Date.now(), any };
    return any;
  }

  return {
    async lease(owner: string, max: number, offer: WorkerOffer, token: string): Promise<LeasedTask[]> {
      const shared = (offer.accountId ?? null) === null;
      if (!shared || !(await anyQuota())) return leaseTasks(db, owner, max, config.leaseSeconds, offer, token);
      return db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [SHARED_LEASE_LOCK]);
        return leaseTasks(tx, owner, max, config.leaseSeconds, offer, token, await sharedQuotaRoom(tx));
      });
    },
  };
}

export type QuotaLeasing = ReturnType<typeof createQuotaLeasing>;
