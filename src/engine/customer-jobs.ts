import { TesseraError, failedPrecondition, notFound } from '../domain/errors.js';
import { newUlid } from '../domain/ids.js';
import { shortState } from '../domain/job-state.js';
import type { Job, Template } from '../domain/types.js';
import { priorityRank } from '../domain/types.js';
import { getTemplate, getTemplates, listTemplates as listStoredTemplates } from '../store/catalog.js';
import type { JobListQuery } from '../store/job-queries.js';
import { countRunningTasks, getJobView, listJobsFiltered } from '../store/job-queries.js';
import { failJob, getJob, insertJob, softDeleteJob, transitionJob, updateNewJob } from '../store/jobs.js';
import { cancelJobTasks, insertTasks, listTaskOutputs } from '../store/tasks.js';
import { bucketRefOf, isBucketDescriptor, secretTypeOfBucket } from '../sources/buckets.js';
import { findComponent } from './catalog.js';
import { earlierResult } from './job-source.js';
import { checkNewJob, storedBytesLeft } from './quotas.js';
import type { EngineDeps } from './deps.js';
import { needsDelivery } from '../sources/data-source.js';
import type { JobInput } from './job-draft.js';
import { checkConfig, draftFromInput, draftOf } from './job-draft.js';
import { maxAttemptsOf } from './task-flow.js';
import { needsFor } from './task-needs.js';

// What a customer can do to a job. Every operation is scoped to the caller's account: another
// account's job looks exactly like a job that does not exist.

export interface JobView {
  job: Job;
  template: Template | null;
}

export interface ResultLink {
  name: string;
  link: string;
}

export const ABORTED_MESSAGE = 'aborted by the user';

const JOB_ID = /^[\x21-\x7e]{1,128}$/;

export function createCustomerJobs(deps: EngineDeps) {
  const { db } = deps;

  // Ids are printable ASCII; anything else (NUL, control characters, huge strings) names no job and is not looked up.
  async function requireJob(accountId: string, jobId: string): Promise<Job> {
    return found(JOB_ID.test(jobId) ? await getJob(db, accountId, jobId) : null, jobId);
  }

  /** What was looked up for `jobId`, or NOT_FOUND (another account's job is not found either). */
  function found<T>(job: T | null, jobId: string): T {
    if (!job) throw notFound('job', jobId, 'list your jobs with GET /v1/customer/jobs');
    return job;
  }

  async function requireTemplate(accountId: string, templateId: string | undefined): Promise<Template> {
    if (!templateId) throw new TesseraError('INVALID_ARGUMENT', 'templateId is required', { field: 'templateId', hint: 'GET /v1/customer/jobs/templates lists the templates' });
    const template = await getTemplate(db, accountId, templateId);
    if (!template) throw notFound('template', templateId, 'GET /v1/customer/jobs/templates lists the templates');
    return template;
  }

  function notNew(job: Job, what: string): TesseraError {
    return failedPrecondition(
      `job ${job.id} is ${job.state} (${shortState(job.state)}); ${what} only while it is JOB_STATE_NEW`,
      'create a new job (POST /v1/customer/jobs) to run with different settings',
    );
  }

  /** FAILED "aborted by the user" and its tasks cancelled, in one transaction; running ones are told to stop. */
  async function stopJob(accountId: string, jobId: string): Promise<void> {
    const stopped = await db.transaction(async (tx) => {
      if (!(await failJob(tx, jobId, ABORTED_MESSAGE))) return false;
      await cancelJobTasks(tx, jobId);
      return true;
    });
    if (!stopped) {
      const current = await requireJob(accountId, jobId);
      throw failedPrecondition(`job ${jobId} already ended (${current.state}); there is nothing to stop`);
    }
    deps.signals.emit('job-stopped', jobId);
  }

  return {
    /** Creates a job, or updates the NEW job named by `jobId`. Template defaults fill what the request leaves out. */
    async createJob(accountId: string, input: JobInput & { jobId?: string }): Promise<JobView> {
      const template = await requireTemplate(accountId, input.templateId);
      if (input.jobId) {
        const existing = await requireJob(accountId, input.jobId);
        if (existing.state !== 'JOB_STATE_NEW') throw notNew(existing, 'a job can be updated');
        const updated = await updateNewJob(db, accountId, existing.id, draftFromInput(input, template, existing));
        if (!updated) throw notNew(await requireJob(accountId, existing.id), 'a job can be updated');
        return { job: updated, template };
      }
      const draft = draftFromInput(input, template);
      const job = await db.transaction(async (tx) => {
        await checkNewJob(tx, accountId);
        return insertJob(tx, { id: newUlid(), accountId, ...draft });
      });
      return { job, template };
    },

    async getJob(accountId: string, jobId: string): Promise<JobView> {
      return found(JOB_ID.test(jobId) ? await getJobView(db, accountId, jobId) : null, jobId);
    },

    async listJobs(accountId: string, query: JobListQuery): Promise<{ views: JobView[]; total: number }> {
      const { jobs, total } = await listJobsFiltered(db, accountId, query);
      const templates = await getTemplates(db, accountId, [...new Set(jobs.map((job) => job.templateId))]);
      return { views: jobs.map((job) => ({ job, template: templates.get(job.templateId) ?? null })), total };
    },

    /** The PATCH operations: change part of a job while it is NEW. */
    async updateJob(accountId: string, jobId: string, change: JobInput): Promise<JobView> {
      const existing = await requireJob(accountId, jobId);
      if (existing.state !== 'JOB_STATE_NEW') throw notNew(existing, 'its settings can be changed');
      const template = await requireTemplate(accountId, existing.templateId);
      const updated = await updateNewJob(db, accountId, jobId, draftFromInput(change, template, existing));
      if (!updated) throw notNew(await requireJob(accountId, jobId), 'its settings can be changed');
      return { job: updated, template };
    },

    /** NEW → STARTED and the partition task queued, in one transaction: a job cannot start twice. */
    async runJob(accountId: string, jobId: string, config: Record<string, unknown> | undefined): Promise<Job> {
      let job = await requireJob(accountId, jobId);
      if (job.state !== 'JOB_STATE_NEW') throw notNew(job, 'a job can be run (each job runs once)');
      const template = await requireTemplate(accountId, job.templateId);
      if (job.dataSource.dataSourceDescriptor === 'file' && !job.uploadCompletedAt) {
        throw failedPrecondition(`job ${jobId} reads an uploaded file, and its upload is not complete`, 'PUT the file to the job\'s dataSource.params.tempUrl, then PATCH /v1/customer/jobs/{jobId}/uploadcompleted, then run');
      }
      await storedBytesLeft(db, accountId);
      if (job.blobsDeletedAt) throw failedPrecondition(`the upload of job ${jobId} was deleted on ${job.blobsDeletedAt.toISOString()}, after the retention period`, 'create a new job and upload the file again');
      if (job.dataSource.dataSourceDescriptor === 'bucket') await earlierResult(deps, accountId, job.dataSource);
      // A missing or expired secret is said now, not after the job has run.
      for (const [place, direction] of [['dataSource', 'source'], ['dataDestination', 'destination']] as const) {
        const where = job[place];
        if (!isBucketDescriptor(where.dataSourceDescriptor)) continue;
        const ref = bucketRefOf(where, place, direction);
        await deps.secrets.credentials(accountId, secretTypeOfBucket(ref.descriptor), ref.secretId, `${place}.params.secret_id`);
      }
      // Refuse now, not halfway through, when a component the job needs is missing.
      await findComponent(db, accountId, 'partitioner', template.partitioner, template.id);
      await findComponent(db, accountId, 'app', job.appId || template.app, template.id);
      await findComponent(db, accountId, 'assembler', template.assembler, template.id);
      const started = await db.transaction(async (tx) => {
        if (config && Object.keys(config).length > 0) {
          const draft = { ...draftOf(job), config: checkConfig({ ...job.config, ...config }) };
          const updated = await updateNewJob(tx, accountId, jobId, draft);
          if (!updated) return false;
          job = updated;
        }
        if (!(await transitionJob(tx, jobId, 'JOB_STATE_NEW', 'JOB_STATE_STARTED', { message: 'run requested' }))) return false;
        await insertTasks(tx, jobId, 'partition', [{ chunkIndex: 0 }], { maxAttempts: maxAttemptsOf(job, deps.config), priority: priorityRank(job.priority), needs: await needsFor(tx, job, 'partition') });
        return true;
      });
      if (!started) throw notNew(await requireJob(accountId, jobId), 'a job can be run (each job runs once)');
      deps.signals.emit('tasks');
      return requireJob(accountId, jobId);
    },

    /** Stops a running job (FAILED, "aborted by the user"); a job that never started is deleted instead. */
    async abortJob(accountId: string, jobId: string): Promise<string> {
      const job = await requireJob(accountId, jobId);
      if (job.state === 'JOB_STATE_NEW') {
        await softDeleteJob(db, accountId, jobId);
        return `job ${jobId} had not started, so it was deleted`;
      }
      await stopJob(accountId, jobId);
      return `job ${jobId} aborted; running tasks are being stopped`;
    },

    /** Like abort, but a job that never started ends cancelled too instead of being deleted (the async view's DELETE). */
    async cancelJob(accountId: string, jobId: string): Promise<void> {
      await requireJob(accountId, jobId);
      await stopJob(accountId, jobId);
    },

    /** Removes a job (aborting it first if it is running) and its stored chunks, results and output. */
    async deleteJob(accountId: string, jobId: string): Promise<string> {
      const job = await requireJob(accountId, jobId);
      await db.transaction(async (tx) => {
        // A job that never started has nothing to stop; a running one is aborted first.
        if (job.state !== 'JOB_STATE_NEW' && (await failJob(tx, jobId, ABORTED_MESSAGE))) await cancelJobTasks(tx, jobId);
        await softDeleteJob(tx, accountId, jobId);
      });
      deps.signals.emit('job-stopped', jobId);
      await deps.blobs.deletePrefix(`jobs/${jobId}/`);
      return `job ${jobId} deleted`;
    },

    /** Signed, expiring download links for a COMPLETE job's output files. */
    async getResults(accountId: string, jobId: string, baseUrl: string): Promise<ResultLink[]> {
      const job = await requireJob(accountId, jobId);
      if (job.state !== 'JOB_STATE_COMPLETE') {
        throw failedPrecondition(
          `job ${jobId} is ${job.state}; results are available once it is JOB_STATE_COMPLETE`,
          job.state === 'JOB_STATE_FAILED' ? `it failed: ${job.errorMessage ?? 'no message'}` : 'poll GET /v1/customer/jobs/{jobId} until its state is JOB_STATE_COMPLETE',
        );
      }
      if (job.blobsDeletedAt) {
        throw failedPrecondition(`the results of job ${jobId} were deleted on ${job.blobsDeletedAt.toISOString()}, ${deps.config.retentionSeconds / 3600} h after it ended`, 'temporary storage keeps results for TESSERA_RETENTION_HOURS; send results to a bucket of yours (aws, gcp, storj) to keep them');
      }
      const destination = job.dataDestination;
      if (needsDelivery(destination)) {
        // Delivered to the customer's bucket: where each file went.
        const folder = String(destination.params?.name ?? '').replace(/^\/+|\/+$/g, '');
        const outputs = (await listTaskOutputs(db, jobId, 'assemble')).flatMap((task) => task.outputs);
        return outputs.map((output) => ({ name: output.name, link: `s3://${String(destination.params?.bucketName)}/${folder ? `${folder}/` : ''}${output.name}` }));
      }
      if (destination.dataSourceDescriptor !== 'bucket') return [];
      const outputs = (await listTaskOutputs(db, jobId, 'assemble')).flatMap((task) => task.outputs);
      return outputs.map((output) => {
        const { expires, signature } = deps.signer.sign(output.blobKey, deps.config.resultLinkTtlSeconds);
        const path = output.blobKey.split('/').map(encodeURIComponent).join('/');
        return { name: output.name, link: `${baseUrl}/v1/files/${path}?expires=${expires}&signature=${signature}` };
      });
    },

    async listTemplates(accountId: string, page: { limit: number; offset: number }) {
      return listStoredTemplates(db, accountId, page);
    },

    /** Tasks running now per job (ByteNite's runningTasks); an id that is not one of the account's jobs is NOT_FOUND. */
    async runningTasks(accountId: string, jobIds: string[]): Promise<Record<string, number>> {
      const valid = jobIds.filter((jobId) => JOB_ID.test(jobId));
      const counts = await countRunningTasks(db, accountId, valid);
      const missing = jobIds.find((jobId) => !counts.has(jobId));
      if (missing !== undefined) found(null, missing);
      return Object.fromEntries(jobIds.map((jobId) => [jobId, counts.get(jobId)!]));
    },

    /** A template's presets (an empty list when it has none); NOT_FOUND for a template the account cannot use. */
    async templatePresets(accountId: string, templateId: string) {
      const template = /^[A-Za-z0-9_-]{1,64}$/.test(templateId) ? await getTemplate(db, accountId, templateId) : null;
      if (!template) throw notFound('template', templateId, 'list the templates with GET /v1/customer/jobs/templates');
      return template.presets ?? [];
    },
  };
}

export type CustomerJobs = ReturnType<typeof createCustomerJobs>;
