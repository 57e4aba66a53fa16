import type { TaskLease } from './worker-link.js';

// Leases on the wire. A batch of a thousand leases is mostly one job's tasks, and each would
// repeat the same component manifest, params and account: the compact form sends those once per
// (job, kind) and each lease names its group. Workers ask for it with `compact: true`; without,
// every lease is sent whole.

/** A lease as sent to a remote worker: the TaskLease plus where to fetch the chunk. */
export interface WireLease extends TaskLease {
  inputUrl: string | null;
}

type Shared = Pick<TaskLease, 'jobId' | 'accountId' | 'kind' | 'component' | 'params' | 'timeoutMs' | 'maxAttempts'>;
type Own = Pick<WireLease, 'taskId' | 'leaseToken' | 'chunkIndex' | 'attempt' | 'inputKey' | 'inputSize' | 'inputUrl'>;

export interface CompactLeases {
  /** What the leases of one group share, by group key. */
  groups: Record<string, Shared>;
  leases: (Own & { group: string })[];
}

export function compactLeases(leases: WireLease[]): CompactLeases {
  const groups: Record<string, Shared> = {};
  // A run of leases of one group (the usual case) builds and looks up its key once: a new key
  // string for each of a thousand leases was most of this function's time on the server.
  let previous: WireLease | undefined;
  let group = '';
  const own = leases.map((lease) => {
    if (previous === undefined || lease.jobId !== previous.jobId || lease.kind !== previous.kind || lease.maxAttempts !== previous.maxAttempts) {
      group = `${lease.jobId}/${lease.kind}/${lease.maxAttempts}`;
      groups[group] ??= { jobId: lease.jobId, accountId: lease.accountId, kind: lease.kind, component: lease.component, params: lease.params, timeoutMs: lease.timeoutMs, maxAttempts: lease.maxAttempts };
    }
    previous = lease;
    return { group, taskId: lease.taskId, leaseToken: lease.leaseToken, chunkIndex: lease.chunkIndex, attempt: lease.attempt, inputKey: lease.inputKey, inputSize: lease.inputSize, inputUrl: lease.inputUrl };
  });
  return { groups, leases: own };
}

/** The leases again, whole; a lease naming a group that was not sent is an error of the server's. */
export function expandLeases(compact: CompactLeases): WireLease[] {
  // Built field by field rather than by spreading: a thousand leases a call, many calls a second.
  return compact.leases.map((own) => {
    const shared = compact.groups[own.group];
    if (!shared) throw new Error(`lease of task ${own.taskId} names group ${JSON.stringify(own.group)}, which the answer does not contain`);
    return {
      taskId: own.taskId,
      leaseToken: own.leaseToken,
      jobId: shared.jobId,
      accountId: shared.accountId,
      kind: shared.kind,
      chunkIndex: own.chunkIndex,
      attempt: own.attempt,
      maxAttempts: shared.maxAttempts,
      inputKey: own.inputKey,
      inputSize: own.inputSize,
      component: shared.component,
      params: shared.params,
      timeoutMs: shared.timeoutMs,
      inputUrl: own.inputUrl,
    };
  });
}
