import type { EventEmitter } from 'node:events';
import { once } from 'node:events';
import type { Config } from '../config/config.js';
import { TesseraError, assertNever, failedPrecondition } from '../domain/errors.js';
import type { JobState } from '../domain/job-state.js';
import { isFinal, previousState, shortState, stateIndex } from '../domain/job-state.js';
import type { Job, TaskKind } from '../domain/types.js';
import { priorityRank } from '../domain/types.js';
import type { RegistryCredentials, TaskLease, TaskReport } from '../domain/worker-link.js';
import type { Manifest } from '../domain/manifest.js';
import { manifestRegistrySecret } from '../domain/manifest.js';
import { EMPTY_REPORT } from '../domain/worker-link.js';
import { getTemplate } from '../store/catalog.js';
import type { Queryable } from '../store/db.js';
import { addStoredBytes, appendJobEvent, failJob, getJobForEngine, transitionJob } from '../store/jobs.js';
import type { StoredComponent } from '../store/catalog.js';
import type { FailedAttempt, TaskOutput, WorkerOffer } from '../store/tasks.js';
import { countFailedAttempts, recordTaskLogs, recordTaskReport, usageUnits } from '../store/task-reports.js';
import type { AttemptRef } from '../store/task-reports.js';
import { analyzeTasks, cancelJobTasks, completeAppTasks, completeTask, expireLeases, failTaskAttempt, insertChunkTasks, insertTasks, isTaskLeaseCurrent, vacuumTasks } from '../store/tasks.js';
import { createQuotaLeasing } from './quota-leasing.js';
import { findComponent } from './catalog.js';
import type { EngineDeps } from './deps.js';
import { COMPONENT_KIND, needsFor } from './task-needs.js';
import { needsDelivery } from '../sources/data-source.js';

// The server's side of a task's life: leasing, stage announcements, fenced completion with the
// job transitions it causes (fan-out after partitioning, fan-in after the last chunk), failures
// and retries. Whether the worker is an in-process slot or a remote agent, it ends up here.

/**
 * How often workers heartbeat: often enough that an abort reaches a remote worker within about
 * two seconds, and at least three times a lease so one late beat never loses it.
 */
export function heartbeatInterval(config: Config): number {
  return Math.max(250, Math.min(2000, (config.leaseSeconds * 1000) / 3));
}

/** What a job says when its partitioner made no chunk (it then completes, with no result). */
const NO_CHUNKS = 'Tessera: the partitioner wrote no chunks (CHUNKS_DIR was empty), so no app task ran and the assembler got no results';

/** Every task kind may run 1 + maxTaskRetries times (a crash or timeout counts as an attempt). */
export function maxAttemptsOf(job: Job, config: Config): number {
  return 1 + (job.config.maxTaskRetries ?? config.defaultMaxTaskRetries);
}

/** The job states a task of each kind runs in: its stage announcements stay inside this range. */
const STAGE_RANGE: Record<TaskKind, [JobState, JobState]> = {
  partition: ['JOB_STATE_STARTED', 'JOB_STATE_PARTITIONING'],
  app: ['JOB_STATE_PARTITIONED', 'JOB_STATE_PARTITIONED'],
  assemble: ['JOB_STATE_TASKS_COMPLETED', 'JOB_STATE_MERGING'],
};


/**
 * A finished task as a worker reports it. App completions need only the task and its lease token
 * (the task row says the rest, and the fenced update checks the kind too); partition and
 * assemble completions carry their whole lease.
 */
export type CompletionItem = { outputs: TaskOutput[]; report: TaskReport } & (
  | { kind: 'app'; taskId: number; leaseToken: string }
  | { kind: 'partition' | 'assemble'; taskId: number; leaseToken: string; lease: TaskLease }
);

/** The completion of a lease the caller holds whole. */
export function completionOf(lease: TaskLease, outputs: TaskOutput[], report: TaskReport): CompletionItem {
  const { taskId, leaseToken } = lease;
  return lease.kind === 'app' ? { kind: 'app', taskId, leaseToken, outputs, report } : { kind: lease.kind, taskId, leaseToken, lease, outputs, report };
}

/** PostgreSQL's "deadlock detected": one of the two transactions was chosen to fail and may simply run again. */
const DEADLOCK = '40P01';

/** Runs `work` again (up to twice more) when PostgreSQL broke a deadlock by failing it. */
async function retryDeadlock<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= 3 || (error as { code?: unknown }).code !== DEADLOCK) throw error;
    }
  }
}

const COMPONENT_CACHE_MS = 5000;

/** A partition of at least this many chunks refreshes the tasks table's statistics once it commits (see analyzeTasks). */
const ANALYZE_AFTER_CHUNKS = 1000;
/**
 * Leased and completed tasks between two VACUUMs of the tasks table. Each lease and completion
 * leaves a dead row version and dead index entries, and the leased ones gather at the front of the
 * queue index that every lease walks: with autovacuum off (this machine's server) a 100,000-chunk
 * job's leases of 500 took 48 ms, 28 of them stepping over 60,000 dead entries, and the job ran at
 * about 200 tasks/s. PGlite has no autovacuum at all.
 */
const VACUUM_AFTER_TASK_UPDATES = 20_000;
const JOB_CACHE_MS = 1000;

/** How often an idle worker looks for work even without a wake-up. */
const IDLE_POLL_MS = 500;

/** Resolves on `event`, after `ms`, or when `signal` aborts, whichever comes first. */
async function waitForSignal(emitter: EventEmitter, event: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  const stop = () => controller.abort();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    await once(emitter, event, { signal: controller.signal });
  } catch {
    // Timed out or stopped: the caller polls again or returns.
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
  }
}

export function createTaskFlow(deps: EngineDeps) {
  const { db, config, log, metrics } = deps;
  const quotaLeasing = createQuotaLeasing(deps);

  /** Builds what a worker needs to run a leased task; null (and the task failed) when that is impossible. */
  // A job's thousands of tasks run the same component: look it up once a few seconds, not per task.
  const components = new Map<string, { at: number; component: Promise<StoredComponent | null> }>();
  function componentOf(job: Job, kind: TaskKind): Promise<StoredComponent | null> {
    const key = `${job.accountId}\u0000${job.templateId}\u0000${job.appId}\u0000${kind}`;
    const cached = components.get(key);
    if (cached && Date.now() - cached.at < COMPONENT_CACHE_MS) return cached.component;
    const component = (async () => {
      const template = await getTemplate(db, job.accountId, job.templateId);
      if (!template) throw failedPrecondition(`template ${job.templateId} of job ${job.id} no longer exists`);
      const tag = kind === 'partition' ? template.partitioner : kind === 'app' ? job.appId || template.app : template.assembler;
      return findComponent(db, job.accountId, COMPONENT_KIND[kind], tag, template.id);
    })();
    // A failed lookup is not remembered.
    component.catch(() => components.delete(key));
    if (components.size > 1000) components.clear();
    components.set(key, { at: Date.now(), component });
    return component;
  }

  // What a lease needs of its job (account, template, params, timeouts) does not change once it
  // runs: read once a second per job, not once per task. A job that stopped meanwhile has no
  // queued task left to lease (abort and failure cancel them in the same transaction).
  const jobs = new Map<string, { at: number; job: Promise<Job | null> }>();
  function jobOf(jobId: string): Promise<Job | null> {
    const cached = jobs.get(jobId);
    if (cached && Date.now() - cached.at < JOB_CACHE_MS) return cached.job;
    const job = getJobForEngine(db, jobId);
    job.catch(() => jobs.delete(jobId));
    if (jobs.size > 1000) jobs.clear();
    jobs.set(jobId, { at: Date.now(), job });
    return job;
  }

  async function registryCredentials(accountId: string, manifest: Manifest, secretId: string): Promise<RegistryCredentials> {
    const opened = await deps.secrets.credentials(accountId, 'other', secretId, `${manifest.name}@${manifest.version}: platform_config.token`);
    const username = manifest.platformConfig.username;
    return { username: typeof username === 'string' && username !== '' ? username : opened.accessKeyId, token: opened.secretAccessKey };
  }

  /** What every lease of one job's tasks of one kind shares, as a lease carries it. */
  type StageOfJob = Pick<TaskLease, 'jobId' | 'accountId' | 'component' | 'params' | 'timeoutMs'>;

  /** What a worker needs to run a task of this job and kind; throws when it cannot run (job over, component gone). */
  async function stageOf(jobId: string, kind: TaskKind): Promise<StageOfJob> {
    const job = await jobOf(jobId);
    if (!job || isFinal(job.state)) throw failedPrecondition(`job ${jobId} is no longer running`);
    const component = await componentOf(job, kind);
    // A private image whose token is an account secret: opened here, for this lease only.
    const secretId = component ? manifestRegistrySecret(component.manifest) : undefined;
    const registry = secretId ? await registryCredentials(job.accountId, component!.manifest, secretId) : undefined;
    return {
      jobId: job.id,
      accountId: job.accountId,
      component: component ? { manifest: component.manifest, archive: component.archive, ...(registry ? { registry } : {}) } : null,
      params: job.params[COMPONENT_KIND[kind]] ?? {},
      timeoutMs: job.config.taskTimeout ? job.config.taskTimeout * 1000 : undefined,
    };
  }

  /** A failed attempt; `lost`: no failure of the task's own (its worker was stopped), which costs no attempt. */
  async function recordFailure(lease: AttemptRef & { leaseToken: string }, error: string, retry: boolean, report: TaskReport = EMPTY_REPORT, lost = false): Promise<void> {
    const ended = await db.transaction(async (tx) => {
      const attempt = await failTaskAttempt(tx, lease.taskId, lease.leaseToken, error, retry, lost, config.maxLostLeases, config.retryBackoff);
      if (!attempt) return null;
      // Locked first, as in recordCompletion.
      await getJobForEngine(tx, lease.jobId, { lock: true });
      await recordTaskReport(tx, lease, report, true);
      await settleFailedAttempt(tx, attempt, error);
      return attempt;
    });
    // Counted after the commit: a rolled-back attempt did not end.
    if (ended) countAttemptEnd(lease.kind, ended.retrying ? 'retried' : 'failed', report);
    deps.signals.emit('tasks');
  }

  /** Metrics of an ended attempt (counted once its transaction has the lease; a late report is not). */
  function countAttemptEnd(kind: TaskKind, outcome: 'completed' | 'retried' | 'failed', report: TaskReport): void {
    const counter = outcome === 'completed' ? metrics.tasksCompleted : outcome === 'retried' ? metrics.tasksRetried : metrics.tasksFailed;
    counter.inc({ kind });
    if (report.usage) metrics.taskDuration.observe({ kind }, report.usage.wallSeconds);
  }

  /** After a failed attempt: a retry is logged; a final failure fails the whole job. */
  async function settleFailedAttempt(tx: Queryable, attempt: FailedAttempt, error: string): Promise<void> {
    const what = attempt.kind === 'app' ? `chunk ${attempt.chunkIndex}` : attempt.kind === 'partition' ? 'the partitioner' : 'the assembler';
    if (attempt.retrying) {
      const how = attempt.lost ? `was lost with its worker (${attempt.lostLeases} of at most ${config.maxLostLeases} times; no attempt counted), running it again` : `failed (attempt ${attempt.attempt} of ${attempt.maxAttempts}), retrying${attempt.backoffSeconds > 0 ? ` in ${attempt.backoffSeconds.toFixed(1)} s` : ''}`;
      await appendJobEvent(tx, attempt.jobId, 'task', null, `${what} ${how}: ${error}`);
      return;
    }
    const attempts = attempt.attempt === 1 ? '1 attempt' : `${attempt.attempt} attempts`;
    const message = attempt.lost
      ? `${what} was lost with its worker ${attempt.lostLeases} times (TESSERA_MAX_LOST_LEASES), each time its worker stopped heartbeating or was stopped: it may be what brings them down; last: ${error}`
      : `${what} failed after ${attempts}${attempt.lostLeases > 0 ? ` (and ${attempt.lostLeases} lost with their workers)` : ''}: ${error}`;
    if (await failJob(tx, attempt.jobId, message)) await cancelJobTasks(tx, attempt.jobId);
  }

  // The queue's upkeep, in the background while the workers lease: statistics after a big fan-out
  // (analyzeTasks), and a VACUUM every VACUUM_AFTER_TASK_UPDATES leased or completed tasks.
  const refreshStatistics = oneAtATime(() => analyzeTasks(db), 'could not refresh the tasks table statistics; autovacuum will');
  const vacuumQueue = oneAtATime(() => vacuumTasks(db), 'could not vacuum the tasks table; autovacuum will, where there is one');
  let taskUpdatesSinceVacuum = 0;
  function countTaskUpdates(rows: number): void {
    taskUpdatesSinceVacuum += rows;
    if (taskUpdatesSinceVacuum < VACUUM_AFTER_TASK_UPDATES) return;
    taskUpdatesSinceVacuum = 0;
    vacuumQueue();
  }

  /** Runs `work` in the background, one at a time; asked again while it runs, it runs once more after. */
  function oneAtATime(work: () => Promise<void>, failure: string): () => void {
    let running = false;
    let again = false;
    const start = (): void => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      void work()
        .catch((error: unknown) => log.warn({ err: error }, failure))
        .finally(() => {
          running = false;
          if (again) {
            again = false;
            start();
          }
        });
    };
    return start;
  }

  /**
   * Leases up to `max` tasks and builds what the worker needs to run each. A call's tasks are
   * mostly one job's: what they share (account, component, params) is looked up once per job and
   * kind, not once per task. A task that cannot run (its job ended meanwhile, its component is
   * gone) fails at once instead of being handed out.
   */
  async function leaseNow(owner: string, max: number, offer: WorkerOffer): Promise<TaskLease[]> {
    const leased = await quotaLeasing.lease(owner, max, offer, deps.leaseTokens.mint(owner));
    countTaskUpdates(leased.length);
    const stages = new Map<string, StageOfJob | { failed: string }>();
    const leases: TaskLease[] = [];
    for (const task of leased) {
      metrics.tasksLeased.inc({ kind: task.kind });
      if (task.attempt === 1) metrics.leaseWait.observe({ kind: task.kind }, task.queuedSeconds);
      const key = `${task.jobId}\u0000${task.kind}`;
      let stage = stages.get(key);
      if (!stage) {
        stage = await stageOf(task.jobId, task.kind).catch((error: unknown) => ({ failed: error instanceof TesseraError ? error.message : String(error) }));
        stages.set(key, stage);
      }
      if ('failed' in stage) {
        await recordFailure({ taskId: task.id, leaseToken: task.leaseToken, jobId: task.jobId, kind: task.kind, chunkIndex: task.chunkIndex, attempt: task.attempt }, stage.failed, false);
        continue;
      }
      const { jobId, accountId, component, params, timeoutMs } = stage;
      leases.push({
        taskId: task.id, leaseToken: task.leaseToken, jobId, accountId, kind: task.kind, chunkIndex: task.chunkIndex, attempt: task.attempt,
        maxAttempts: task.maxAttempts, inputKey: task.inputKey, inputSize: task.inputSize, component, params, timeoutMs,
      });
    }
    return leases;
  }

  /** Partition and assemble completions: one at a time, each with the job transitions it causes. */
  async function recordStageCompletion(tx: Queryable, lease: TaskLease, outputs: TaskOutput[], report: TaskReport): Promise<'completed' | 'delivery' | 'lost'> {
    // A partition's chunks are recorded as its app tasks' inputs, not again as a list on its own
    // row (100,000 chunks would be a 10 MB JSON value written and held once more).
    if (!(await completeTask(tx, lease.taskId, lease.leaseToken, lease.kind === 'partition' ? [] : outputs))) return 'lost';
    // The job row is locked before anything else touches it: inserting logs takes a key-share
    // lock on it and the report updates it, and a transaction that holds a weaker lock and then
    // asks for a stronger one deadlocks with its twin.
    const job = await getJobForEngine(tx, lease.jobId, { lock: true });
    if (!job) return 'lost';
    await addStoredBytes(tx, lease.jobId, outputs.reduce((sum, output) => sum + output.size, 0));
    // Not an error, but never silent: said in the partitioner's logs and in the job's events.
    const noChunks = lease.kind === 'partition' && outputs.length === 0;
    await recordTaskReport(tx, lease, noChunks ? { ...report, logs: [...report.logs, { at: new Date().toISOString(), stream: 'stderr', level: 'WARN', line: NO_CHUNKS }] } : report, false);
    if (noChunks) await appendJobEvent(tx, lease.jobId, 'task', null, NO_CHUNKS);
    const advance = (from: JobState, to: JobState, message?: string) => advanceJob(tx, lease, from, to, message);
    switch (lease.kind) {
      case 'partition':
        // The chunks' tasks first: PARTITIONED is then stamped when they are all queued (the
        // transition reads the clock), and a failed transition rolls the inserts back with it.
        await insertChunkTasks(tx, lease.jobId, outputs, await queueOptions(tx, job, 'app'));
        if (!(await transitionJob(tx, lease.jobId, 'JOB_STATE_PARTITIONING', 'JOB_STATE_PARTITIONED', { numChunks: outputs.length, message: `${outputs.length} chunks` }))) {
          throw failedPrecondition(`job ${lease.jobId} is ${shortState(job.state)}, not PARTITIONING`);
        }
        if (outputs.length === 0) {
          await advance('JOB_STATE_PARTITIONED', 'JOB_STATE_TASKS_COMPLETED', 'the partitioner made no chunks');
          await insertTasks(tx, lease.jobId, 'assemble', [{ chunkIndex: 0 }], await queueOptions(tx, job, 'assemble'));
        }
        return 'completed';
      case 'assemble':
        await advance('JOB_STATE_MERGING', 'JOB_STATE_MERGED', `${outputs.length} output files`);
        await advance('JOB_STATE_MERGED', 'JOB_STATE_DOWNLOADING');
        // The bucket destination already holds the output (it is what the links point at) and
        // bypass keeps nothing: complete now. A bucket of the customer's is delivered to by a
        // server after this commits (deliveries.ts).
        if (needsDelivery(job.dataDestination)) return 'delivery';
        await advance('JOB_STATE_DOWNLOADING', 'JOB_STATE_COMPLETE');
        return 'completed';
      case 'app':
        throw new TesseraError('INTERNAL', 'app completions are recorded in batches');
      default:
        return assertNever(lease.kind, 'task kind');
    }
  }

  async function queueOptions(tx: Queryable, job: Job, kind: TaskKind) {
    return { maxAttempts: maxAttemptsOf(job, config), priority: priorityRank(job.priority), needs: await needsFor(tx, job, kind) };
  }

  async function advanceJob(tx: Queryable, lease: { jobId: string; kind: TaskKind }, from: JobState, to: JobState, message?: string): Promise<void> {
    if (!(await transitionJob(tx, lease.jobId, from, to, message === undefined ? {} : { message }))) {
      throw failedPrecondition(`job ${lease.jobId} moved on while its ${lease.kind} task finished (expected ${shortState(from)})`);
    }
  }

  /**
   * App completions, many at a time: one statement completes the tasks (fenced, each with its
   * usage) and counts them into their jobs. A quiet batch commits on its own; one with log lines
   * stores them in the same transaction. A job whose last chunk this was then moves to
   * TASKS_COMPLETED and gets its assemble task (finishAppPhase); should that not happen (the
   * server stopped in between, the database failed), the sweep finds the job and does it.
   */
  async function recordAppCompletions(items: CompletionItem[]): Promise<Set<number>> {
    // A task listed twice in one batch completes (and reports) once.
    const byTask = new Map(items.map((item) => [item.taskId, item]));
    const completions = [...byTask.values()].map(({ taskId, leaseToken, outputs, report }) => ({ taskId, leaseToken, outputs, usage: report.usage, units: report.usage ? usageUnits(report.usage) : 0 }));
    const quiet = completions.every((completion) => byTask.get(completion.taskId)!.report.logs.length === 0);
    const done = await retryDeadlock(() => quiet
      ? completeAppTasks(db, completions)
      : db.transaction(async (tx) => {
        const completed = await completeAppTasks(tx, completions);
        for (const task of completed.tasks) {
          const { logs } = byTask.get(task.id)!.report;
          if (logs.length > 0) await recordTaskLogs(tx, { ...task, kind: 'app', taskId: task.id }, logs);
        }
        return completed;
      }));
    for (const job of done.jobs) {
      if (job.numChunks === null || job.chunksDone < job.numChunks) continue;
      await finishAppPhase(job.jobId).catch((error: unknown) => deps.log.error({ err: error, jobId: job.jobId }, 'could not close the app phase of a job; the sweep will'));
    }
    return new Set(done.tasks.map((task) => task.id));
  }

  /**
   * A job whose every chunk is done: TASKS_COMPLETED and its assemble task, in one transaction;
   * true when this call did it. Nothing when the job has moved on already (a twin call or the
   * sweep did it, or the job failed or was cancelled meanwhile).
   */
  async function finishAppPhase(jobId: string): Promise<boolean> {
    return db.transaction(async (tx) => {
      const job = await getJobForEngine(tx, jobId, { lock: true });
      if (!job || job.state !== 'JOB_STATE_PARTITIONED' || job.numChunks === null || job.chunksDone < job.numChunks) return false;
      await advanceJob(tx, { jobId, kind: 'app' }, 'JOB_STATE_PARTITIONED', 'JOB_STATE_TASKS_COMPLETED', `all ${job.numChunks} chunks done`);
      await insertTasks(tx, jobId, 'assemble', [{ chunkIndex: 0 }], await queueOptions(tx, job, 'assemble'));
      return true;
    });
  }

  /**
   * Records finished tasks; answers, per item, whether its lease was still current (false: a
   * late worker, nothing changed). App tasks are recorded together in one transaction; a
   * partition or assemble completion has its own, with the transitions it causes.
   */
  async function recordCompletions(items: CompletionItem[]): Promise<boolean[]> {
    const results = new Map<number, boolean>();
    let deliveryDue = false;
    const apps = items.filter((item) => item.kind === 'app');
    if (apps.length > 0) {
      const completed = await recordAppCompletions(apps);
      countTaskUpdates(completed.size);
      for (const item of apps) results.set(item.taskId, completed.has(item.taskId));
    }
    for (const item of items) {
      if (item.kind === 'app') continue;
      const outcome = await db.transaction((tx) => recordStageCompletion(tx, item.lease, item.outputs, item.report));
      results.set(item.taskId, outcome !== 'lost');
      if (outcome === 'delivery') deliveryDue = true;
      if (outcome === 'completed' && item.kind === 'partition' && item.outputs.length >= ANALYZE_AFTER_CHUNKS) refreshStatistics();
    }
    const answers = items.map((item) => results.get(item.taskId) ?? false);
    // Counted after the commit: a rolled-back attempt did not end.
    for (const [index, item] of items.entries()) if (answers[index]) countAttemptEnd(item.kind, 'completed', item.report);
    if (answers.some(Boolean)) deps.signals.emit('tasks');
    if (deliveryDue) deps.signals.emit('deliveries');
    return answers;
  }

  return {
    recordFailure,

    finishAppPhase,

    lease: leaseNow,

    /**
     * Long-poll lease: waits up to `waitMs` for work, woken at once when tasks are queued (in this
     * process directly, from other replicas through the database's notifications), and polling
     * now and then in case a wake-up was missed.
     */
    async leaseWaiting(worker: WorkerOffer & { id: string }, max: number, waitMs: number, signal?: AbortSignal): Promise<TaskLease[]> {
      const deadline = Date.now() + waitMs;
      for (;;) {
        // Checked before leasing: a task leased for a caller that has gone would sit idle until its lease expired.
        if (signal?.aborted) return [];
        const leases = await leaseNow(worker.id, max, worker);
        const remaining = deadline - Date.now();
        if (leases.length > 0 || remaining <= 0) return leases;
        await waitForSignal(deps.signals, 'tasks', Math.min(remaining, IDLE_POLL_MS), signal);
      }
    },

    /** The job enters `state` (e.g. PARTITIONING) for this task. Idempotent for retried tasks. */
    async enterStage(lease: TaskLease, state: JobState): Promise<void> {
      const [first, last] = STAGE_RANGE[lease.kind];
      if (stateIndex(state) < stateIndex(first) || stateIndex(state) > stateIndex(last)) {
        throw failedPrecondition(`a ${lease.kind} task cannot move its job to ${state}`);
      }
      await db.transaction(async (tx) => {
        if (!(await isTaskLeaseCurrent(tx, lease.taskId, lease.leaseToken))) throw failedPrecondition(`the lease on task ${lease.taskId} was lost`);
        const job = await getJobForEngine(tx, lease.jobId, { lock: true });
        if (!job || isFinal(job.state)) throw failedPrecondition(`job ${lease.jobId} is no longer running`);
        // A retried task finds its job already at (or past) this stage: nothing to do.
        if (stateIndex(job.state) >= stateIndex(state) && stateIndex(job.state) <= stateIndex(last)) return;
        if (!(await transitionJob(tx, job.id, previousState(state), state))) {
          throw failedPrecondition(`job ${job.id} is ${shortState(job.state)}, not ready for ${shortState(state)}`);
        }
      });
    },

    /**
     * Fenced completion plus what it causes, in one transaction: a lost lease changes nothing;
     * the partition task queues one app task per chunk; the last app task moves the job to
     * TASKS_COMPLETED and queues the assembler; the assembler's output completes the job.
     */
    async recordCompletion(lease: TaskLease, outputs: TaskOutput[], report: TaskReport = EMPTY_REPORT): Promise<boolean> {
      return (await recordCompletions([completionOf(lease, outputs, report)]))[0]!;
    },

    recordCompletions,
    /**
     * Leases whose worker went silent (or, `all`, every lease: an embedded start, whose previous
     * process is gone): run again without costing an attempt, or the job fails once one was lost
     * too often.
     */
    async expireLeases(all = false): Promise<number> {
      // Expiry and its consequence commit together, so a crash between them cannot leave a
      // failed last attempt behind a job that still looks like it is running.
      const expired = await db.transaction(async (tx) => {
        const attempts = await expireLeases(tx, config.maxLostLeases, all ? 100_000 : 1000, all);
        await countFailedAttempts(tx, attempts);
        for (const attempt of attempts) await settleFailedAttempt(tx, attempt, 'the worker stopped heartbeating (crashed or cut off) and its lease expired');
        return attempts;
      });
      for (const attempt of expired) {
        log.warn({ jobId: attempt.jobId, taskId: attempt.taskId, retrying: attempt.retrying }, 'task lease expired');
        metrics.leasesExpired.inc();
        (attempt.retrying ? metrics.tasksRetried : metrics.tasksFailed).inc({ kind: attempt.kind });
      }
      if (expired.length > 0) deps.signals.emit('tasks');
      return expired.length;
    },
  };
}

export type TaskFlow = ReturnType<typeof createTaskFlow>;
