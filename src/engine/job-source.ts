import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TesseraError, quote } from '../domain/errors.js';
import { fetchUrlToFolder } from '../sources/url.js';
import { getJobForEngine } from '../store/jobs.js';
import type { EngineDeps } from './deps.js';

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
      return fetchUrlToFolder(String(source.params?.url), folder, {
        allowPrivate: deps.config.allowPrivateUrls,
        maxBytes: deps.config.maxSourceBytes,
        timeoutMs: deps.config.urlTimeoutMs,
      });
    default:
      throw new TesseraError('FAILED_PRECONDITION', `data source ${quote(source.dataSourceDescriptor)} is not supported`);
  }
}
