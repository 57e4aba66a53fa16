import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TesseraError, invalidArgument, quote } from '../domain/errors.js';
import { plainFileName } from '../domain/file-names.js';
import type { DataSource } from '../domain/types.js';
import { bucketRefOf, downloadObject, isBucketDescriptor, listSourceObjects, openCustomerBucket, presignObject, secretTypeOfBucket } from '../sources/buckets.js';
import type { BucketDescriptor, CustomerBucket } from '../sources/buckets.js';
import { checkDataSource } from '../sources/data-source.js';
import { fetchUrlToFolder, probeUrl } from '../sources/url.js';
import { getJob, getJobForEngine } from '../store/jobs.js';
import { listTaskOutputs } from '../store/tasks.js';
import type { EngineDeps } from './deps.js';
import type { SourceDirectory } from './source-directory.js';
import { sourceDirectory } from './source-directory.js';
import { createUploads } from './uploads.js';

// Fetching a job's input into a folder, done by the server (for remote workers it then streams
// the file on), so the operator's rules for URL sources hold wherever the workers run.

/** Fetches the job's data source into `folder`; returns the path of the one input file. */
export async function fetchJobSource(deps: EngineDeps, jobId: string, folder: string): Promise<string> {
  const job = await getJobForEngine(deps.db, jobId);
  if (!job) throw new TesseraError('NOT_FOUND', `job ${jobId} no longer exists`);
  const source = job.dataSource;
  switch (source.dataSourceDescriptor) {
    case 'bypass': {
      // A fan-out partitioner ("replicate N times") still needs something to read.
      const file = path.join(folder, 'input');
      await writeFile(file, '');
      return file;
    }
    case 'url':
      return fetchUrlToFolder(String(source.params?.url), folder, urlOptions(deps));
    case 'file':
      return createUploads(deps).fetch(job, folder);
    case 'bucket': {
      const result = await earlierResult(deps, job.accountId, source);
      const target = path.join(folder, plainFileName(result.name.split('/').pop() ?? ''));
      await deps.blobs.getFile(result.blobKey, target);
      return target;
    }
    default: {
      if (!isBucketDescriptor(source.dataSourceDescriptor)) throw new TesseraError('FAILED_PRECONDITION', `data source ${quote(source.dataSourceDescriptor)} is not supported`);
      const bucket = await openBucket(deps, job.accountId, source, 'dataSource', 'source');
      const [object] = await listSourceObjects(bucket, 1);
      return downloadObject(bucket, object!, folder, deps.config.maxSourceBytes);
    }
  }
}

/** The result of an earlier job of the same account that a bucket source names (and is still kept). */
export async function earlierResult(deps: EngineDeps, accountId: string, source: DataSource): Promise<{ name: string; blobKey: string; size: number }> {
  const jobId = String(source.params?.jobId);
  const earlier = await getJob(deps.db, accountId, jobId);
  if (!earlier) throw new TesseraError('FAILED_PRECONDITION', `dataSource.params.jobId: job ${quote(jobId)} was not found`, { hint: 'a bucket source reads a result of one of your own jobs (GET /v1/customer/jobs lists them)' });
  if (earlier.state !== 'JOB_STATE_COMPLETE' || earlier.dataDestination.dataSourceDescriptor !== 'bucket') {
    throw new TesseraError('FAILED_PRECONDITION', `dataSource.params.jobId: job ${jobId} has no results in temporary storage (it is ${earlier.state}, destination ${quote(earlier.dataDestination.dataSourceDescriptor)})`, { hint: 'name a COMPLETE job whose destination is "bucket"' });
  }
  if (earlier.blobsDeletedAt) throw new TesseraError('FAILED_PRECONDITION', `dataSource.params.jobId: the results of job ${jobId} were deleted on ${earlier.blobsDeletedAt.toISOString()}, after the retention period`);
  const outputs = (await listTaskOutputs(deps.db, jobId, 'assemble')).flatMap((task) => task.outputs);
  const names = outputs.map((output) => output.name);
  const wanted = source.params?.name;
  const chosen = wanted === undefined ? (outputs.length === 1 ? outputs[0] : undefined) : outputs.find((output) => output.name === wanted);
  if (!chosen) {
    throw new TesseraError('FAILED_PRECONDITION', wanted === undefined ? `dataSource.params.name: job ${jobId} has ${outputs.length} results; name one` : `dataSource.params.name: job ${jobId} has no result ${quote(wanted)}`, { hint: `its results: ${names.map((name) => quote(name)).join(', ') || 'none'}` });
  }
  return chosen;
}

/** A customer's bucket from a source or destination, opened with the account secret it names. */
export async function openBucket(deps: EngineDeps, accountId: string, source: DataSource, field: string, direction: 'source' | 'destination'): Promise<CustomerBucket> {
  const ref = bucketRefOf(source, field, direction);
  const credentials = await deps.secrets.credentials(accountId, secretTypeOfBucket(source.dataSourceDescriptor as BucketDescriptor), ref.secretId, `${field}.params.secret_id`);
  return openCustomerBucket(ref, credentials, deps.config.allowPrivateUrls);
}

const urlOptions = (deps: EngineDeps) => ({ allowPrivate: deps.config.allowPrivateUrls, maxBytes: deps.config.maxSourceBytes, timeoutMs: deps.config.urlTimeoutMs });

/** POST /v1/customer/datasource/test: what a source would read, without running a job. */
export interface SourceCheck {
  filename: string;
  path: string;
  /** int64 as a string, as in ByteNite's API; "-1" when the server does not say. */
  size: string;
  /** A link to read the file for a while (buckets: presigned), or "". */
  tempUrl: string;
  /** What was listed (with listFiles), as ByteNite's directory model; an empty one otherwise. */
  files: SourceDirectory;
}

const LIST_LIMIT = 1000;
const TEST_LINK_SECONDS = 900;

export async function testDataSource(deps: EngineDeps, accountId: string, raw: DataSource | undefined, listFiles: boolean): Promise<SourceCheck> {
  try {
    return await checkSource(deps, accountId, raw, listFiles);
  } catch (error) {
    // A source that cannot be reached is the request's problem, not this server's (no 503).
    if (error instanceof TesseraError && (error.code === 'UNAVAILABLE' || error.code === 'DEADLINE_EXCEEDED')) {
      throw new TesseraError('FAILED_PRECONDITION', error.message, { hint: error.hint ?? 'check the address, and that it is reachable from the Tessera server' });
    }
    throw error;
  }
}

async function checkSource(deps: EngineDeps, accountId: string, raw: DataSource | undefined, listFiles: boolean): Promise<SourceCheck> {
  if (!raw || typeof raw !== 'object' || typeof raw.dataSourceDescriptor !== 'string') {
    throw invalidArgument('dataSource', 'the body needs a dataSource {dataSourceDescriptor, params}', 'for example {"dataSource":{"dataSourceDescriptor":"url","params":{"url":"https://example.com/data.csv"}},"listFiles":false}');
  }
  const empty: SourceCheck = { filename: '', path: '', size: '0', tempUrl: '', files: sourceDirectory('', []) };
  const descriptor = raw.dataSourceDescriptor;
  if (isBucketDescriptor(descriptor)) {
    // A folder name is allowed here (to list it), so the bucket params are checked directly.
    const bucket = await openBucket(deps, accountId, raw, 'dataSource', 'source');
    const objects = await listSourceObjects(bucket, listFiles ? LIST_LIMIT : 1);
    if (objects.length === 0) throw new TesseraError('FAILED_PRECONDITION', `no objects under s3://${bucket.ref.bucket}/${bucket.ref.name}`, { hint: 'check params.name' });
    const first = objects[0]!;
    const tempUrl = await presignObject(bucket, first.key, TEST_LINK_SECONDS);
    const entry = (object: { key: string; size: number }) => ({ name: object.key.split('/').pop() ?? object.key, path: object.key, size: String(object.size) });
    return { filename: entry(first).name, path: first.key, size: String(first.size), tempUrl, files: sourceDirectory(bucket.ref.name, listFiles ? objects.map(entry) : []) };
  }
  const source = checkDataSource(raw, 'dataSource');
  switch (source.dataSourceDescriptor) {
    case 'bypass':
      return empty;
    case 'url': {
      const probe = await probeUrl(String(source.params?.url), urlOptions(deps));
      const file = { name: probe.name, path: probe.url, size: String(probe.size) };
      return { filename: probe.name, path: probe.url, size: String(probe.size), tempUrl: '', files: { name: '', path: '', files: listFiles ? [file] : [], directories: [] } };
    }
    case 'bucket': {
      const result = await earlierResult(deps, accountId, source);
      const file = { name: result.name, path: `${String(source.params?.jobId)}/${result.name}`, size: String(result.size) };
      return { filename: result.name, path: file.path, size: file.size, tempUrl: '', files: sourceDirectory(String(source.params?.jobId), listFiles ? [file] : []) };
    }
    case 'file':
      throw invalidArgument('dataSource.dataSourceDescriptor', 'a file source has nothing to test before its upload', 'create the job, PUT the file to its dataSource.params.tempUrl, then PATCH /v1/customer/jobs/{jobId}/uploadcompleted');
    default:
      throw invalidArgument('dataSource.dataSourceDescriptor', `data source ${quote(descriptor)} cannot be tested`);
  }
}
