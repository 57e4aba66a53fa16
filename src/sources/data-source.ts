import { invalidArgument, quote } from '../domain/errors.js';
import type { DataSource } from '../domain/types.js';
import { BUCKET_DESCRIPTORS, bucketRefOf, isBucketDescriptor } from './buckets.js';

// Which data sources and destinations Tessera accepts, and the checks made when a job is
// created or updated, so a bad descriptor is refused at once rather than when the job runs.

export const SOURCE_DESCRIPTORS = ['bypass', 'url', 'file', 'bucket', ...BUCKET_DESCRIPTORS] as const;
export const DESTINATION_DESCRIPTORS = ['bucket', 'bypass', ...BUCKET_DESCRIPTORS] as const;

export const TYPE_PREFIX = 'type.googleapis.com/bytenite.data_source.';

export const DEFAULT_SOURCE: DataSource = { dataSourceDescriptor: 'bypass', params: {} };
export const DEFAULT_DESTINATION: DataSource = { dataSourceDescriptor: 'bucket', params: {} };

export function checkDataSource(source: DataSource, field: string): DataSource {
  const descriptor = source.dataSourceDescriptor;
  const params = source.params ?? {};
  switch (descriptor) {
    case 'bypass':
      return { dataSourceDescriptor: 'bypass', params };
    case 'url': {
      const url = params.url;
      checkType(params, 'HttpDataSource', `${field}.params`);
      if (typeof url !== 'string' || !isHttpUrl(url)) {
        throw invalidArgument(`${field}.params.url`, `url ${quote(url)} is not an http(s) URL`, 'for example {"dataSourceDescriptor":"url","params":{"@type":"type.googleapis.com/bytenite.data_source.HttpDataSource","url":"https://example.com/input.txt"}}');
      }
      return { dataSourceDescriptor: 'url', params };
    }
    case 'file': {
      checkType(params, 'LocalFileDataSource', `${field}.params`);
      // The upload link is the server's to give (params.tempUrl in the job); nothing else is kept.
      return { dataSourceDescriptor: 'file', params: { '@type': TYPE_PREFIX + 'LocalFileDataSource' } };
    }
    case 'bucket': {
      // A result in Tessera's temporary storage: an earlier job's output, so jobs can be chained.
      const { jobId, name } = params;
      const example = '{"dataSourceDescriptor":"bucket","params":{"jobId":"01J…","name":"counts.json"}}';
      if (typeof jobId !== 'string' || !/^[0-9A-Za-z_-]{1,64}$/.test(jobId)) throw invalidArgument(`${field}.params.jobId`, `a bucket source reads an earlier job's result: params.jobId ${quote(jobId)} must name that job`, `for example ${example}`);
      if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > 1024)) throw invalidArgument(`${field}.params.name`, `params.name ${quote(name)} must be the name of one of that job's results`, 'GET /v1/customer/jobs/{jobId}/results lists them; leave it out when there is only one');
      return { dataSourceDescriptor: 'bucket', params: { jobId, ...(name === undefined ? {} : { name }) } };
    }
    default:
      if (isBucketDescriptor(descriptor)) {
        checkType(params, 'S3DataSource', `${field}.params`);
        const ref = bucketRefOf(source, field, 'source');
        if (ref.name.endsWith('/')) throw invalidArgument(`${field}.params.name`, `name ${quote(ref.name)} is a folder; a source reads one object`, 'name the object, e.g. "input/data.csv" (POST /v1/customer/datasource/test with listFiles lists a folder)');
        return { dataSourceDescriptor: descriptor, params };
      }
      throw unsupported(descriptor, SOURCE_DESCRIPTORS, `${field}.dataSourceDescriptor`, 'data source');
  }
}

export function checkDataDestination(destination: DataSource, field: string): DataSource {
  const descriptor = destination.dataSourceDescriptor;
  switch (descriptor) {
    case 'bucket':
    case 'bypass':
      return { dataSourceDescriptor: descriptor, params: destination.params ?? {} };
    default:
      if (isBucketDescriptor(descriptor)) {
        checkType(destination.params ?? {}, 'S3DataSource', `${field}.params`);
        bucketRefOf(destination, field, 'destination');
        return { dataSourceDescriptor: descriptor, params: destination.params ?? {} };
      }
      throw unsupported(descriptor, DESTINATION_DESCRIPTORS, `${field}.dataSourceDescriptor`, 'data destination');
  }
}

function unsupported(descriptor: unknown, supported: readonly string[], field: string, what: string) {
  return invalidArgument(field, `unsupported ${what} ${quote(descriptor)}`, `use one of: ${supported.join(', ')}`);
}

/** Whether the job's output leaves Tessera for a bucket of the customer's (delivered after MERGED). */
export function needsDelivery(destination: DataSource): boolean {
  return isBucketDescriptor(destination.dataSourceDescriptor);
}

function checkType(params: Record<string, unknown>, name: string, field: string): void {
  const type = params['@type'];
  if (type !== undefined && type !== TYPE_PREFIX + name) {
    throw invalidArgument(`${field}.@type`, `@type ${quote(type)} does not match this data source`, `use "${TYPE_PREFIX}${name}" or leave @type out`);
  }
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname.length > 0;
  } catch {
    return false;
  }
}
