import { TesseraError, invalidArgument, notFound, quote } from '../domain/errors.js';
import { ULID_PATTERN } from '../domain/ids.js';
import { shortState } from '../domain/job-state.js';
import type { Job, Template } from '../domain/types.js';
import { hasCancellingTasks } from '../store/tasks.js';
import { JOB_TYPE } from './catalog.js';
import type { CustomerJobs, JobView } from './customer-jobs.js';
import { ABORTED_MESSAGE } from './customer-jobs.js';
import type { EngineDeps } from './deps.js';
import type { JobInput } from './job-draft.js';

// The Bytescale-style asynchronous job view (seed 004): one body that says where to poll, the
// job's status in Bytescale's vocabulary and a summary. It is a view over the same jobs the
// ByteNite API manages; docs/async-jobs.md documents the status mapping.

export const DEFAULT_JOB_TYPE = 'ProcessFileJob';
export const JOB_DOCS_PATH = '/docs/async-jobs';

export type AsyncStatus = 'Created' | 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Cancelling' | 'Cancelled' | 'Rollback';

export interface AsyncJobBody {
  async: true;
  jobUrl: string;
  jobDocs: string;
  jobId: string;
  jobType: string;
  accountId: string;
  created: number;
  lastUpdated: number;
  status: AsyncStatus;
  summary: Record<string, unknown>;
}

export function jobTypeOf(template: Template | null): string {
  return template?.jobType ?? DEFAULT_JOB_TYPE;
}

/**
 * NEW → Created; STARTED (queued, no task running yet) → Pending; UPLOADING … DOWNLOADING →
 * Running; COMPLETE → Succeeded; FAILED → Failed, or for an aborted job Cancelling while any of
 * its tasks is still stopping, then Cancelled. Rollback is never produced (nothing is undone).
 */
export function asyncStatus(job: Job, stillStopping: boolean): AsyncStatus {
  switch (job.state) {
    case 'JOB_STATE_NEW':
      return 'Created';
    case 'JOB_STATE_STARTED':
      return 'Pending';
    case 'JOB_STATE_COMPLETE':
      return 'Succeeded';
    case 'JOB_STATE_FAILED':
      if (job.errorMessage !== ABORTED_MESSAGE) return 'Failed';
      return stillStopping ? 'Cancelling' : 'Cancelled';
    default:
      return 'Running';
  }
}

function lastUpdated(job: Job): number {
  const times = Object.values(job.stateTimestamps).map((at) => at.getTime());
  return Math.max(job.createdAt.getTime(), ...times);
}

export function createAsyncJobs(deps: EngineDeps, jobs: CustomerJobs) {
  /** The path's account, job type and id, checked; another account's path looks like a missing job. */
  function checkPath(accountId: string, path: { accountId: string; jobType: string; jobId?: string }): void {
    if (!JOB_TYPE.test(path.jobType)) throw invalidArgument('jobType', `jobType ${quote(path.jobType)} is not a job type`, 'job types are letters and digits, e.g. "ProcessFileJob"');
    if (path.jobId !== undefined && !ULID_PATTERN.test(path.jobId)) {
      throw invalidArgument('jobId', `jobId ${quote(path.jobId)} is not a 26-character ULID`, 'use the jobId a job was created with, e.g. "01ARZ3NDEKTSV4RRFFQ69G5FAV"');
    }
    if (path.accountId !== accountId) {
      throw path.jobId === undefined ? notFound('account', path.accountId, 'use the account id of your API key (GET /v1/auth/user)') : notFound('job', path.jobId);
    }
  }

  async function body({ job, template }: JobView, baseUrl: string): Promise<AsyncJobBody> {
    const status = asyncStatus(job, job.state === 'JOB_STATE_FAILED' && (await hasCancellingTasks(deps.db, job.id)));
    const jobType = jobTypeOf(template);
    const summary: Record<string, unknown> = { state: job.state, templateId: job.templateId };
    if (status === 'Running') summary.progress = { stage: shortState(job.state), tasksDone: job.chunksDone, tasksTotal: job.numChunks };
    if (status === 'Succeeded') {
      summary.tasksTotal = job.numChunks;
      summary.results = await jobs.getResults(job.accountId, job.id, baseUrl);
    }
    if (status === 'Failed' || status === 'Cancelling' || status === 'Cancelled') summary.error = job.errorMessage;
    return {
      async: true,
      jobUrl: `${baseUrl}/v2/accounts/${job.accountId}/jobs/${jobType}/${job.id}`,
      jobDocs: `${baseUrl}${JOB_DOCS_PATH}`,
      jobId: job.id,
      jobType,
      accountId: job.accountId,
      created: job.createdAt.getTime(),
      lastUpdated: lastUpdated(job),
      status,
      summary,
    };
  }

  async function requireView(accountId: string, path: { accountId: string; jobType: string; jobId: string }): Promise<JobView> {
    checkPath(accountId, path);
    const view = await jobs.getJob(accountId, path.jobId);
    // A job seen under another type's URL does not exist there.
    if (jobTypeOf(view.template) !== path.jobType) throw notFound('job', path.jobId, `this job's type is ${jobTypeOf(view.template)}`);
    return view;
  }

  return {
    async get(accountId: string, path: { accountId: string; jobType: string; jobId: string }, baseUrl: string): Promise<AsyncJobBody> {
      return body(await requireView(accountId, path), baseUrl);
    },

    /** Cancels the job (a job not yet started too: it ends Cancelled, it is not deleted). */
    async cancel(accountId: string, path: { accountId: string; jobType: string; jobId: string }, baseUrl: string): Promise<AsyncJobBody> {
      const view = await requireView(accountId, path);
      await jobs.cancelJob(accountId, view.job.id);
      return body(await jobs.getJob(accountId, view.job.id), baseUrl);
    },

    /** Creates a job from a template and an input and starts it, in one call. */
    async start(accountId: string, path: { accountId: string; jobType: string }, input: JobInput, baseUrl: string): Promise<AsyncJobBody> {
      checkPath(accountId, path);
      const created = await jobs.createJob(accountId, input);
      if (jobTypeOf(created.template) !== path.jobType) {
        await jobs.deleteJob(accountId, created.job.id);
        throw invalidArgument('jobType', `template ${quote(created.job.templateId)} makes ${jobTypeOf(created.template)} jobs, not ${path.jobType}`, `POST to /v2/accounts/${accountId}/jobs/${jobTypeOf(created.template)}`);
      }
      try {
        await jobs.runJob(accountId, created.job.id, undefined);
      } catch (error) {
        // Nothing half-made: a job that could not start is removed again.
        await jobs.deleteJob(accountId, created.job.id);
        throw error instanceof TesseraError ? error : new TesseraError('INTERNAL', String(error));
      }
      return body(await jobs.getJob(accountId, created.job.id), baseUrl);
    },
  };
}

export type AsyncJobs = ReturnType<typeof createAsyncJobs>;
