import { createWriteStream } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { TesseraError, failedPrecondition, invalidArgument, notFound, quote } from '../domain/errors.js';
import { plainFileName } from '../domain/file-names.js';
import type { Job } from '../domain/types.js';
import { getJobForEngine } from '../store/jobs.js';
import { storedBytesExceeded, storedBytesLeft } from './quotas.js';
import { listUploadParts, markUploadCompleted, upsertUploadPart } from '../store/uploads.js';
import type { EngineDeps } from './deps.js';

// The file data source: the job answers an upload link (params.tempUrl); the client PUTs the
// bytes there, whole or in numbered parts (?part=N, joined in order), streamed into blob storage
// with the size capped; then PATCH …/uploadcompleted; then run. The link is a capability (signed,
// expiring) like a result link, so a browser or curl can PUT without the API key.

const MAX_PARTS = 10_000;

const uploadKey = (jobId: string) => `uploads/${jobId}`;

/** The file name from `Content-Disposition: attachment; filename="…"`: a plain name, never a path. */
export function fileNameFromDisposition(header: string | undefined): string {
  const match = header ? /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header) : null;
  let name = match?.[1] ?? '';
  try {
    name = decodeURIComponent(name);
  } catch {
    // Not percent-encoded: taken as it is.
  }
  return plainFileName(name.split(/[/\\]/).pop() ?? '');
}

export function createUploads(deps: EngineDeps) {
  const { db, blobs, config, signer } = deps;

  function needsUpload(job: Job): boolean {
    return job.dataSource.dataSourceDescriptor === 'file' && job.state === 'JOB_STATE_NEW' && !job.uploadCompletedAt;
  }

  return {
    /** The job's upload link while it waits for its file; undefined otherwise. */
    link(job: Job, baseUrl: string): string | undefined {
      if (!needsUpload(job)) return undefined;
      const { expires, signature } = signer.sign(uploadKey(job.id), config.uploadLinkTtlSeconds);
      return `${baseUrl}/v1/uploads/${encodeURIComponent(job.id)}?expires=${expires}&signature=${signature}`;
    },

    /** One PUT to the upload link: the bytes streamed into blob storage as part `part` (1 when not given). */
    async receive(jobId: string, query: { expires?: string; signature?: string; part?: string }, disposition: string | undefined, body: Readable): Promise<{ part: number; size: number; uploadedBytes: number }> {
      signer.verify(uploadKey(jobId), query.expires, query.signature);
      const part = query.part === undefined ? 1 : /^\d{1,5}$/.test(query.part) ? Number(query.part) : Number.NaN;
      if (!(part >= 1 && part <= MAX_PARTS)) throw invalidArgument('part', `part ${quote(query.part)} must be a whole number from 1 to ${MAX_PARTS}`, 'send a large file as parts 1, 2, 3… (each a PUT to the same link with ?part=N), then call uploadcompleted');
      const job = await getJobForEngine(db, jobId);
      if (!job || job.deletedAt) throw notFound('job', jobId);
      if (!needsUpload(job)) throw failedPrecondition(`job ${jobId} does not take an upload now (its source is ${quote(job.dataSource.dataSourceDescriptor)}, its state ${job.state}${job.uploadCompletedAt ? ', its upload is complete' : ''})`, 'uploads go to a NEW job with a "file" data source, before uploadcompleted');
      const others = (await listUploadParts(db, jobId)).filter((entry) => entry.part !== part).reduce((sum, entry) => sum + entry.size, 0);
      // Each attempt writes its own key: a part sent twice at once never mixes the two bodies.
      const key = `jobs/${jobId}/upload/part-${String(part).padStart(5, '0')}-${randomBytes(6).toString('hex')}`;
      const left = await storedBytesLeft(db, job.accountId);
      const stored = await blobs.putStream(key, body, Math.min(config.maxSourceBytes - others, left)).catch((error) => {
        // The store's size limit (a full disk, which has the system's error as its cause, stays what it is).
        if (error instanceof TesseraError && error.code === 'RESOURCE_EXHAUSTED' && error.cause === undefined) {
          if (left < config.maxSourceBytes - others) throw storedBytesExceeded(`the upload of job ${jobId}`, left);
          throw new TesseraError('RESOURCE_EXHAUSTED', `the upload of job ${jobId} is larger than the limit of ${config.maxSourceBytes} bytes`, { hint: 'the operator can raise TESSERA_MAX_SOURCE_BYTES' });
        }
        throw error;
      });
      const recorded = await db.transaction(async (tx) => {
        const current = await getJobForEngine(tx, jobId, { lock: true });
        if (!current || !needsUpload(current)) return false;
        const previous = (await listUploadParts(tx, jobId)).find((entry) => entry.part === part);
        await upsertUploadPart(tx, jobId, { part, blobKey: stored.key, size: stored.size, fileName: fileNameFromDisposition(disposition) });
        return previous?.blobKey ?? true;
      });
      if (recorded === false) {
        await blobs.deletePrefix(stored.key);
        throw failedPrecondition(`job ${jobId} stopped taking uploads while this part arrived (uploadcompleted, run or delete came first)`);
      }
      if (typeof recorded === 'string') await blobs.deletePrefix(recorded);
      return { part, size: stored.size, uploadedBytes: others + stored.size };
    },

    /** uploadcompleted: the file is all there; the job may run. */
    async complete(accountId: string, job: Job): Promise<string> {
      if (job.dataSource.dataSourceDescriptor !== 'file') throw failedPrecondition(`job ${job.id} has a ${quote(job.dataSource.dataSourceDescriptor)} data source, not "file"; there is no upload to complete`);
      if (job.uploadCompletedAt) return `the upload of job ${job.id} was already complete`;
      const parts = await listUploadParts(db, job.id);
      if (parts.length === 0) throw failedPrecondition(`nothing was uploaded for job ${job.id}`, 'PUT the file to the job\'s dataSource.params.tempUrl first');
      const missing = parts.map((entry, index) => (entry.part !== index + 1 ? index + 1 : 0)).find((number) => number > 0);
      if (missing) throw failedPrecondition(`part ${missing} of the upload of job ${job.id} is missing (parts received: ${parts.map((entry) => entry.part).join(', ')})`, 'parts are numbered 1, 2, 3… without gaps');
      if (!(await markUploadCompleted(db, accountId, job.id))) throw failedPrecondition(`job ${job.id} is no longer NEW`);
      const bytes = parts.reduce((sum, entry) => sum + entry.size, 0);
      return `upload of job ${job.id} complete: ${parts.length} part${parts.length === 1 ? '' : 's'}, ${bytes} bytes`;
    },

    /** The uploaded file, parts joined in order, into `folder`; returns its path. */
    async fetch(job: Job, folder: string): Promise<string> {
      const parts = await listUploadParts(db, job.id);
      if (!job.uploadCompletedAt || parts.length === 0) throw failedPrecondition(`the upload of job ${job.id} is not complete`);
      const target = path.join(folder, parts[0]!.fileName);
      const out = createWriteStream(target);
      for (const entry of parts) {
        const { stream } = await blobs.openRead(entry.blobKey);
        await pipeline(stream, out, { end: false });
      }
      out.end();
      await finished(out);
      return target;
    },
  };
}

export type Uploads = ReturnType<typeof createUploads>;
