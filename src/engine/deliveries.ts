import { TesseraError } from '../domain/errors.js';
import { uploadOutput } from '../sources/buckets.js';
import { appendJobEvent, claimDelivery, failJob, getJobForEngine, listExpiredStorage, markStorageDeleted, setDeliveryClaim, transitionJob } from '../store/jobs.js';
import { listTaskOutputs } from '../store/tasks.js';
import type { EngineDeps } from './deps.js';
import { openBucket } from './job-source.js';

// After MERGED, output bound for a bucket of the customer's (aws, gcp, storj) is delivered by a
// server: the job waits in DOWNLOADING, a replica claims it, streams each output file from
// Tessera's blobs into the destination folder (multipart for large files), then completes it. The
// claim runs out if that replica dies, and another delivers again (objects are overwritten whole,
// so a second delivery leaves the same result). Credentials never leave the servers.
//
// The same loop deletes temporary storage past retention: the bucket destination's results and
// the uploads, TESSERA_RETENTION_HOURS (48) after the job ended.

const MAX_DELIVERY_ATTEMPTS = 3;
/** Errors that another try cannot fix: refused credentials, a missing bucket or secret. */
const PERMANENT = new Set(['INVALID_ARGUMENT', 'FAILED_PRECONDITION', 'PERMISSION_DENIED', 'NOT_FOUND', 'RESOURCE_EXHAUSTED']);
const RETENTION_EVERY_MS = 60_000;

export function createDeliveries(deps: EngineDeps) {
  const { db, log, blobs, config } = deps;
  // A claim lasts two task leases (at least 6 s) and is renewed while the delivery runs, so a
  // replica that dies mid-delivery holds the job up for about as long as a worker that dies mid-task.
  const claimSeconds = Math.max(6, config.leaseSeconds * 2);
  let running: Promise<void> | undefined;
  let lastRetention = 0;

  async function deliver(jobId: string, attempts: number): Promise<void> {
    const job = await getJobForEngine(db, jobId);
    if (!job || job.state !== 'JOB_STATE_DOWNLOADING') return;
    const keepClaim = setInterval(() => void setDeliveryClaim(db, jobId, claimSeconds).catch(() => {}), (claimSeconds * 1000) / 3);
    const destination = job.dataDestination;
    const where = `s3://${String(destination.params?.bucketName)}/${String(destination.params?.name ?? '').replace(/^\/+|\/+$/g, '')}`;
    try {
      const bucket = await openBucket(deps, job.accountId, destination, 'dataDestination', 'destination');
      const outputs = (await listTaskOutputs(db, jobId, 'assemble')).flatMap((task) => task.outputs);
      for (const output of outputs) {
        const { stream } = await blobs.openRead(output.blobKey);
        await uploadOutput(bucket, output.name, stream);
      }
      const completed = await db.transaction(async (tx) => {
        if (!(await getJobForEngine(tx, jobId, { lock: true }))) return false;
        return transitionJob(tx, jobId, 'JOB_STATE_DOWNLOADING', 'JOB_STATE_COMPLETE', { message: `${outputs.length} output file${outputs.length === 1 ? '' : 's'} delivered to ${where}` });
      });
      if (completed) log.info({ jobId, files: outputs.length }, 'output delivered');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const permanent = error instanceof TesseraError && PERMANENT.has(error.code);
      if (permanent || attempts >= MAX_DELIVERY_ATTEMPTS) {
        await db.transaction(async (tx) => failJob(tx, jobId, `delivering the output to ${where} failed${permanent ? '' : ` ${attempts} times`}: ${message}`));
        log.warn({ jobId, err: message }, 'delivery failed');
      } else {
        await appendJobEvent(db, jobId, 'task', null, `delivering the output to ${where} failed (attempt ${attempts} of ${MAX_DELIVERY_ATTEMPTS}), retrying: ${message}`);
        await setDeliveryClaim(db, jobId, 5 * attempts);
        log.warn({ jobId, err: message, attempts }, 'delivery failed; retrying');
      }
    } finally {
      clearInterval(keepClaim);
    }
  }

  async function deleteExpiredStorage(): Promise<void> {
    for (const jobId of await listExpiredStorage(db, config.retentionSeconds, 100)) {
      await blobs.deletePrefix(`jobs/${jobId}`);
      await markStorageDeleted(db, jobId);
      log.info({ jobId }, 'temporary storage deleted after retention');
    }
  }

  async function work(): Promise<void> {
    try {
      for (let claim = await claimDelivery(db, claimSeconds); claim; claim = await claimDelivery(db, claimSeconds)) {
        await deliver(claim.jobId, claim.attempts);
      }
      if (Date.now() - lastRetention >= RETENTION_EVERY_MS) {
        lastRetention = Date.now();
        await deleteExpiredStorage();
      }
    } catch (error) {
      log.error({ err: error }, 'delivery sweep failed');
    }
  }

  return {
    /** Starts a pass unless one is running (called by the scheduler's sweep and when a job reaches DOWNLOADING). */
    kick(): void {
      running ??= work().finally(() => (running = undefined));
    },
    /** One pass, awaited (tests). */
    async runOnce(): Promise<void> {
      await running;
      await work();
    },
    /** Forces the retention step on the next pass. */
    retentionDue(): void {
      lastRetention = 0;
    },
    async stop(): Promise<void> {
      await running;
    },
  };
}

export type Deliveries = ReturnType<typeof createDeliveries>;
