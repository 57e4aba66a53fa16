import { TesseraError } from '../domain/errors.js';
import type { Queryable } from '../store/db.js';
import { accountUsage, getAccount } from '../store/accounts.js';

// Per-account quotas the operator sets (/v1/operator/accounts/{accountId}): jobs made per minute
// and bytes held in the blob store, checked here where work or data is added; tasks on shared
// workers at once, held in the lease statement (quota-leasing.ts). A quota reached answers
// RESOURCE_EXHAUSTED (HTTP 429) naming the quota, its value and what the account uses.

function reached(quota: string, limit: number, used: string, hint: string, retryAfterSeconds?: number): TesseraError {
  return new TesseraError('RESOURCE_EXHAUSTED', `the account's quota ${quota} = ${limit} is reached (${used})`, { hint, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) });
}

const STORED_HINT = 'delete finished jobs (DELETE /v1/customer/jobs/{jobId}) or components to free space, or ask the operator to raise the quota';

/**
 * Before a job is made: the account's jobs per minute and stored bytes. Called inside the
 * transaction that makes the job; with a jobs-per-minute quota the account's job creations are
 * serialised there, so two at once cannot both take the last place.
 */
export async function checkNewJob(tx: Queryable, accountId: string): Promise<void> {
  const account = await getAccount(tx, accountId);
  if (!account || (account.maxJobsPerMinute === null && account.maxStoredBytes === null)) return;
  if (account.maxJobsPerMinute !== null) await tx.query(`SELECT pg_advisory_xact_lock(hashtext('tessera jobs of ' || $1))`, [accountId]);
  const usage = await accountUsage(tx, accountId);
  if (account.maxJobsPerMinute !== null && usage.jobsLastMinute >= account.maxJobsPerMinute) {
    throw reached('maxJobsPerMinute', account.maxJobsPerMinute, `${usage.jobsLastMinute} jobs made in the last minute`, 'make fewer jobs at once (several chunks per job), or wait', 60);
  }
  checkStoredBytes(account.maxStoredBytes, usage.storedBytes);
}

function checkStoredBytes(limit: number | null, used: number): void {
  if (limit !== null && used >= limit) throw reached('maxStoredBytes', limit, `${used} bytes stored`, STORED_HINT);
}

/**
 * Before data is stored for an account (a job run, an upload, a component): refused when its
 * stored bytes are at the quota. The bytes it may still store (Infinity without a quota), to cap
 * a stream with.
 */
export async function storedBytesLeft(db: Queryable, accountId: string): Promise<number> {
  const account = await getAccount(db, accountId);
  if (!account || account.maxStoredBytes === null) return Number.POSITIVE_INFINITY;
  const { storedBytes } = await accountUsage(db, accountId);
  checkStoredBytes(account.maxStoredBytes, storedBytes);
  return account.maxStoredBytes - storedBytes;
}

/** Data refused (or an upload cut) at the account's stored-bytes quota, said as such. */
export function storedBytesExceeded(what: string, left: number): TesseraError {
  return new TesseraError('RESOURCE_EXHAUSTED', `${what} would pass the account's quota maxStoredBytes: ${left} bytes were left`, { hint: STORED_HINT });
}
