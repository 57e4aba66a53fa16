import { invalidArgument, notFound, quote } from '../domain/errors.js';
import type { AccountRow, AccountUsage, Quotas } from '../store/accounts.js';
import { accountUsage, getAccount, listAccounts, listActiveKeyIds, setAccountDisabled, updateQuotas } from '../store/accounts.js';
import { failJob, listRunningJobIds } from '../store/jobs.js';
import { cancelJobTasks } from '../store/tasks.js';
import type { KeyCheck } from './accounts.js';
import { createAccountWithKey } from './accounts.js';
import type { EngineDeps } from './deps.js';

// What the operator does over HTTP (/v1/operator, an operator key): make customer accounts (their
// first key answered once), list them with what they use, set their quotas, and disable them (their
// keys and tokens stop at once on this server, within seconds on the others, and their running
// jobs are aborted) or enable them again.

export const DISABLED_MESSAGE = 'aborted: the account was disabled by the operator';

/** Quota values as the API takes them: whole numbers of at least 0, or null for none. */
const QUOTA_LIMITS: Record<keyof Quotas, number> = { maxSharedTasks: 1_000_000, maxStoredBytes: Number.MAX_SAFE_INTEGER, maxJobsPerMinute: 1_000_000 };

export interface AccountView {
  accountId: string;
  name: string;
  createdAt: string;
  disabledAt: string | null;
  quotas: Quotas;
  usage: AccountUsage;
}

/** int64 values travel as strings of digits (the seed's style); both are taken. */
function quotaValue(name: keyof Quotas, value: unknown): number | null {
  if (value === null) return null;
  const number = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 0 || number > QUOTA_LIMITS[name]) {
    throw invalidArgument(`quotas.${name}`, `quotas.${name} ${quote(value)} must be a whole number from 0 to ${QUOTA_LIMITS[name]}, or null for no limit`);
  }
  return number;
}

export function checkQuotas(raw: unknown): Partial<Quotas> {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidArgument('quotas', 'quotas must be an object of maxSharedTasks, maxStoredBytes and maxJobsPerMinute');
  const quotas: Partial<Quotas> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!(name in QUOTA_LIMITS)) throw invalidArgument(`quotas.${name}`, `unknown quota ${quote(name)}`, 'quotas are maxSharedTasks, maxStoredBytes and maxJobsPerMinute');
    quotas[name as keyof Quotas] = quotaValue(name as keyof Quotas, value);
  }
  return quotas;
}

export function createOperator(deps: EngineDeps, keys: KeyCheck) {
  const { db } = deps;

  async function view(account: AccountRow): Promise<AccountView> {
    return {
      accountId: account.id,
      name: account.name,
      createdAt: account.createdAt.toISOString(),
      disabledAt: account.disabledAt?.toISOString() ?? null,
      quotas: { maxSharedTasks: account.maxSharedTasks, maxStoredBytes: account.maxStoredBytes, maxJobsPerMinute: account.maxJobsPerMinute },
      usage: await accountUsage(db, account.id),
    };
  }

  async function requireAccount(accountId: string): Promise<AccountRow> {
    const account = /^[A-Za-z0-9]{1,64}$/.test(accountId) ? await getAccount(db, accountId) : null;
    if (!account || account.role !== 'customer') throw notFound('account', accountId, 'GET /v1/operator/accounts lists the accounts');
    return account;
  }

  /** Aborts an account's running jobs, as a user's abort does; how many. */
  async function abortRunningJobs(accountId: string): Promise<number> {
    let aborted = 0;
    for (const id of await listRunningJobIds(db, accountId)) {
      const stopped = await db.transaction(async (tx) => {
        if (!(await failJob(tx, id, DISABLED_MESSAGE))) return false;
        await cancelJobTasks(tx, id);
        return true;
      });
      if (!stopped) continue;
      aborted++;
      deps.signals.emit('job-stopped', id);
    }
    return aborted;
  }

  return {
    async list(limit: number, offset: number): Promise<AccountView[]> {
      return Promise.all((await listAccounts(db, limit, offset)).map(view));
    },

    async get(accountId: string): Promise<AccountView> {
      return view(await requireAccount(accountId));
    },

    /** A new customer account and its first key (shown only in this answer). */
    async create(name: unknown, quotas: unknown): Promise<{ account: AccountView; apiKey: string }> {
      if (name !== undefined && (typeof name !== 'string' || name.length > 256)) throw invalidArgument('name', `name ${quote(name)} must be a string of at most 256 characters`);
      const checked = checkQuotas(quotas);
      const key = await db.transaction(async (tx) => {
        const made = await createAccountWithKey(tx, (name as string | undefined) ?? '');
        await updateQuotas(tx, made.accountId, checked);
        return made;
      });
      const { accountId } = key;
      // Its quota applies to the next lease here, and within a second on other replicas.
      deps.signals.emit('quotas');
      return { account: await view((await getAccount(db, accountId))!), apiKey: key.apiKey };
    },

    /** Sets quotas (a value null: none; a quota left out: unchanged); disables or enables the account. */
    async update(accountId: string, change: { quotas?: unknown; disabled?: unknown }): Promise<{ account: AccountView; abortedJobs: number }> {
      await requireAccount(accountId);
      if (change.disabled !== undefined && typeof change.disabled !== 'boolean') throw invalidArgument('disabled', `disabled ${quote(change.disabled)} must be true or false`);
      await updateQuotas(db, accountId, checkQuotas(change.quotas));
      let abortedJobs = 0;
      if (change.disabled !== undefined) {
        await setAccountDisabled(db, accountId, change.disabled);
        if (change.disabled) {
          // Its keys stop at once here (long polls of its workers too), within KEY_CACHE_MS elsewhere.
          for (const keyId of await listActiveKeyIds(db, accountId)) keys.forget(keyId);
          abortedJobs = await abortRunningJobs(accountId);
        }
      }
      deps.signals.emit('quotas');
      return { account: await view(await requireAccount(accountId)), abortedJobs };
    },
  };
}

export type Operator = ReturnType<typeof createOperator>;
