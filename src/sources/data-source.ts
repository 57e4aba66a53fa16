import { invalidArgument, quote } from '../domain/errors.js';
import type { DataSource } from '../domain/types.js';

// Which data sources and destinations Tessera accepts, and the checks made when a job is
// created or updated, so a bad descriptor is refused at once rather than when the job runs.

export const SOURCE_DESCRIPTORS = ['bypass', 'url'] as const;
export const DESTINATION_DESCRIPTORS = ['bucket', 'bypass'] as const;

export const TYPE_PREFIX = 'type.googleapis.com/bytenite.data_source.';

const PLANNED = ['file', 'bucket', 'aws', 's3', 'gcp', 'storj'];

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
    default:
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
      throw unsupported(descriptor, DESTINATION_DESCRIPTORS, `${field}.dataSourceDescriptor`, 'data destination');
  }
}

function unsupported(descriptor: unknown, supported: readonly string[], field: string, what: string) {
  const later = typeof descriptor === 'string' && PLANNED.includes(descriptor) ? ` (${descriptor} is not available in this version yet)` : '';
  return invalidArgument(field, `unsupported ${what} ${quote(descriptor)}${later}`, `use one of: ${supported.join(', ')}`);
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
