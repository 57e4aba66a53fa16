import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../config/config.js';
import { ADDITIONAL_PATHS, ADDITIONAL_SCHEMAS, DELETE_JOB } from './openapi-additions.js';
import { DATA_PATHS, DATA_SCHEMAS } from './openapi-data.js';
import { DEVELOPER_PATHS, DEVELOPER_SCHEMAS } from './openapi-developer.js';
import { describeErrors } from './openapi-errors.js';
import { EXTENSION_SCHEMAS, extendSeedSchemas } from './openapi-extensions.js';
import { OPERATOR_PATHS, OPERATOR_SCHEMAS } from './openapi-operator.js';
import { STATS_PATHS, STATS_SCHEMAS } from './openapi-stats.js';

// One OpenAPI 3.1 document for the whole API: the ByteNite seed (spec/, kept byte for byte in
// the repository) with its paths under /v1/customer, plus Tessera's operations. The same
// document validates requests (validation.ts) and is served at /openapi.json.

export const SEED_FILE = path.join(packageRoot(), 'spec', 'bytenite-customer-jobs.openapi.json');
export const SEED_PREFIX = '/v1/customer';

type Json = Record<string, any>;

export function seedDocument(): Json {
  return JSON.parse(readFileSync(SEED_FILE, 'utf8'));
}

let cached: Json | undefined;

export function openApiDocument(): Json {
  if (cached) return cached;
  const seed = seedDocument();
  const paths: Json = {};
  for (const [route, item] of Object.entries(seed.paths as Json)) paths[`${SEED_PREFIX}${route}`] = item;
  for (const [route, item] of Object.entries({ ...ADDITIONAL_PATHS, ...DEVELOPER_PATHS, ...DATA_PATHS, ...OPERATOR_PATHS, ...STATS_PATHS })) paths[route] = { ...paths[route], ...(item as Json) };
  paths[`${SEED_PREFIX}/jobs/{jobId}`] = { ...paths[`${SEED_PREFIX}/jobs/{jobId}`], delete: DELETE_JOB };
  describeErrors(paths);
  cached = {
    ...seed,
    info: { ...seed.info, title: 'Tessera API (ByteNite-compatible jobs API)', version: '0.1.0' },
    servers: [{ url: '/' }],
    paths,
    components: {
      ...seed.components,
      securitySchemes: {
        ...seed.components.securitySchemes,
        operatorKey: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'An operator key: made at first start (tessera up prints it) or by tessera key create --operator.' },
      },
      schemas: { ...extendSeedSchemas(seed.components.schemas), ...EXTENSION_SCHEMAS, ...ADDITIONAL_SCHEMAS, ...DEVELOPER_SCHEMAS, ...DATA_SCHEMAS, ...OPERATOR_SCHEMAS, ...STATS_SCHEMAS },
    },
  };
  return cached;
}

/** Each operation by operationId, with its method and path. */
export function operations(document: Json = openApiDocument()): Map<string, { method: string; path: string; operation: Json }> {
  const found = new Map<string, { method: string; path: string; operation: Json }>();
  for (const [route, item] of Object.entries(document.paths as Json)) {
    for (const [method, operation] of Object.entries(item as Json)) {
      if (operation && typeof operation === 'object' && 'operationId' in operation) found.set(operation.operationId, { method, path: route, operation });
    }
  }
  return found;
}
