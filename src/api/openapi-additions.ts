import { JOB_CONFIG_EXTENSIONS } from './openapi-extensions.js';

// Tessera's operations beyond the seed's eight (CONTRACT.md, "Customer API beyond the seed"),
// written in the seed's own style: protobuf-ish names, rpcStatus as the default response.

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const json = (schema: unknown) => ({ 'application/json': { schema } });

const errorResponses = { default: { description: 'An unexpected error response.', content: json(ref('rpcStatus')) } };

const jobIdParameter = { name: 'jobId', in: 'path', required: true, schema: { type: 'string' } };

const paginationParameters = [
  { name: 'pagination.limit', in: 'query', required: false, description: 'Number of rows to return per page.', schema: { type: 'integer', format: 'int64' } },
  { name: 'pagination.offset', in: 'query', required: false, description: 'Number of rows to skip before starting to collect the result set.', schema: { type: 'integer', format: 'int64' } },
];

const configProperties = {
  taskTimeout: { type: 'integer', format: 'int64', description: 'Seconds one task may run before it is killed and retried.' },
  jobTimeout: { type: 'integer', format: 'int64', description: 'Seconds the whole job may run before it fails.' },
  isTestJob: { type: 'boolean' },
  ...JOB_CONFIG_EXTENSIONS,
};

export const ADDITIONAL_SCHEMAS: Record<string, unknown> = {
  tesseraJobConfig: { type: 'object', properties: configProperties, additionalProperties: false },
  customerCreateJobRequest: {
    type: 'object',
    required: ['templateId'],
    additionalProperties: false,
    properties: {
      templateId: { type: 'string', minLength: 1, description: 'The template the job runs; its defaults fill what the request leaves out.' },
      jobId: { type: 'string', description: 'Update this job instead of creating one (only while it is JOB_STATE_NEW).' },
      name: { type: 'string' },
      description: { type: 'string' },
      dataSource: ref('data_sourceDataSource'),
      dataDestination: ref('data_sourceDataSource'),
      params: ref('jobAppParams'),
      config: ref('tesseraJobConfig'),
      priority: ref('jobByteLevel'),
      regions: ref('commonSelectionList'),
      startAt: { type: 'string', format: 'date-time' },
      appId: { type: 'string' },
    },
  },
  customerRunJobRequest: {
    type: 'object',
    description: 'Accepted as {"config": {...}}, as the config fields flat, as {} or as no body at all.',
    additionalProperties: false,
    properties: { config: ref('tesseraJobConfig'), ...configProperties },
  },
  authAccessTokenRequest: {
    type: 'object',
    required: ['apiKey'],
    additionalProperties: false,
    properties: { apiKey: { type: 'string', minLength: 1, maxLength: 512 } },
  },
  authAccessTokenResponse: {
    type: 'object',
    properties: { token: { type: 'string' }, expiresIn: { type: 'string', format: 'int64', description: 'Seconds until the token expires.' }, scope: { type: 'string' } },
  },
  authUserResponse: { type: 'object', properties: { accountId: { type: 'string', minLength: 7, maxLength: 7 }, scope: { type: 'string' } } },
  authKey: {
    type: 'object',
    description: 'An API key or worker token of the account: never its secret, only its first characters.',
    required: ['id', 'prefix', 'scope', 'createdAt', 'lastUsedAt', 'revokedAt'],
    additionalProperties: false,
    properties: {
      id: { type: 'string' },
      prefix: { type: 'string', description: 'The first characters of the key, to tell keys apart.' },
      scope: { type: 'string', enum: ['customer', 'worker', 'operator'], description: 'customer: this API; worker: a token for the account\'s own workers (tessera worker --token), or for a shared worker when the operator\'s; operator: /v1/operator.' },
      createdAt: { type: 'string', format: 'date-time' },
      lastUsedAt: { type: ['string', 'null'], format: 'date-time', description: 'Noted at most once a minute.' },
      revokedAt: { type: ['string', 'null'], format: 'date-time' },
    },
  },
  authKeysResponse: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: ref('authKey') } } },
  authCreateKeyRequest: {
    type: 'object',
    additionalProperties: false,
    properties: { scope: { type: 'string', enum: ['customer', 'worker'], default: 'customer' } },
  },
  authCreateKeyResponse: {
    type: 'object',
    required: ['key', 'apiKey'],
    properties: { key: ref('authKey'), apiKey: { type: 'string', description: 'The key itself: shown this once (only a hash is stored).' } },
  },
  asyncJobResponse: {
    type: 'object',
    description: 'The Bytescale-style asynchronous job body (docs/async-jobs.md).',
    required: ['async', 'jobUrl', 'jobDocs', 'jobId', 'jobType', 'accountId', 'created', 'lastUpdated', 'status', 'summary'],
    properties: {
      async: { const: true },
      jobUrl: { type: 'string', minLength: 1, maxLength: 255 },
      jobDocs: { type: 'string' },
      jobId: { type: 'string', minLength: 26, maxLength: 26 },
      jobType: { type: 'string' },
      accountId: { type: 'string', minLength: 7, maxLength: 7 },
      created: { type: 'integer', minimum: 0 },
      lastUpdated: { type: 'integer', minimum: 0 },
      status: { type: 'string', enum: ['Cancelled', 'Cancelling', 'Created', 'Failed', 'Pending', 'Rollback', 'Running', 'Succeeded'] },
      summary: { type: 'object' },
    },
  },
  asyncError: {
    type: 'object',
    required: ['code', 'message', 'time'],
    properties: {
      code: { type: 'string', minLength: 1, maxLength: 255 },
      message: { type: 'string', minLength: 1 },
      details: { type: 'object' },
      time: { type: 'string', minLength: 24, maxLength: 24 },
    },
  },
  customerGenericResponse: {
    type: 'object',
    properties: {
      ok: { type: 'boolean' },
      requestId: { type: 'string' },
      message: { type: 'string' },
      error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, description: { type: 'string' } } },
    },
  },
  customerRunningTasksRequest: {
    type: 'object',
    required: ['jobsIds'],
    additionalProperties: false,
    properties: { jobsIds: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string' }, description: 'Jobs of the account (at most 1,000); one that is not answers 404.' } },
  },
  customerRunningTasksResponse: {
    type: 'object',
    required: ['jobsRunningTasks'],
    properties: { jobsRunningTasks: { type: 'object', description: 'Tasks running now, by job id.', additionalProperties: { type: 'integer', format: 'int32' } } },
  },
  customerInfoResponse: {
    type: 'object',
    required: ['version', 'messages'],
    properties: {
      version: { type: 'object', required: ['major', 'minor', 'tag'], properties: { major: { type: 'integer', format: 'int32' }, minor: { type: 'integer', format: 'int32' }, tag: { type: 'string', description: 'The release, e.g. v0.1.0.' } } },
      messages: { type: 'array', items: { type: 'string' }, description: 'Notices for the users of this deployment (none so far).' },
    },
  },
  customerTemplatesResponse: {
    type: 'object',
    properties: { pagination: ref('commonPaginatedResponse'), data: { type: 'array', items: ref('jobJobTemplate') } },
  },
};

const generic = { 200: { description: 'A successful response.', content: json(ref('customerGenericResponse')) }, ...errorResponses };
const jobResponse = { 200: { description: 'A successful response.', content: json(ref('jobsJobResponse')) }, ...errorResponses };

function asyncPathParameters(withJobId: boolean) {
  return [
    { name: 'accountId', in: 'path', required: true, schema: { type: 'string', minLength: 7, maxLength: 7 } },
    { name: 'jobType', in: 'path', required: true, schema: { type: 'string' } },
    ...(withJobId ? [{ name: 'jobId', in: 'path', required: true, schema: { type: 'string', minLength: 26, maxLength: 26 } }] : []),
  ];
}

const asyncResponses = {
  200: { description: 'The job.', content: json(ref('asyncJobResponse')) },
  default: { description: 'An error, in this API family\'s shape.', content: json(ref('asyncError')) },
};

export const ADDITIONAL_PATHS: Record<string, Record<string, unknown>> = {
  '/v1/customer/jobs': {
    post: {
      operationId: 'Customer_CreateJob',
      summary: 'Create a job',
      description: 'Only templateId is required. With jobId, updates that job while it is JOB_STATE_NEW.',
      tags: ['Tessera'],
      requestBody: { required: true, content: json(ref('customerCreateJobRequest')) },
      responses: jobResponse,
    },
  },
  '/v1/customer/jobs/{jobId}/run': {
    post: {
      operationId: 'Customer_RunJob',
      summary: 'Run a job',
      tags: ['Tessera'],
      parameters: [jobIdParameter],
      requestBody: { required: false, content: json(ref('customerRunJobRequest')) },
      responses: generic,
    },
  },
  '/v1/customer/jobs/{jobId}/abort': {
    post: { operationId: 'Customer_AbortJob', summary: 'Abort a job (a job not yet started is deleted)', tags: ['Tessera'], parameters: [jobIdParameter], responses: generic },
  },
  '/v1/customer/jobs/templates': {
    get: {
      operationId: 'Customer_GetTemplates',
      summary: 'List templates',
      tags: ['Tessera'],
      parameters: paginationParameters,
      responses: { 200: { description: 'A successful response.', content: json(ref('customerTemplatesResponse')) }, ...errorResponses },
    },
  },
  '/v1/customer/jobs/runningTasks': {
    post: {
      operationId: 'Customer_GetRunningTasks',
      summary: 'Tasks running now, for several jobs at once',
      tags: ['Tessera'],
      requestBody: { required: true, content: json(ref('customerRunningTasksRequest')) },
      responses: { 200: { description: 'A successful response.', content: json(ref('customerRunningTasksResponse')) }, ...errorResponses },
    },
  },
  '/v1/customer/jobs/templates/{templateId}/presets': {
    get: {
      operationId: 'Customer_GetTemplatePresets',
      summary: "A template's presets: named param sets to start a job from (none: an empty list)",
      tags: ['Tessera'],
      parameters: [{ name: 'templateId', in: 'path', required: true, schema: { type: 'string' } }],
      responses: { 200: { description: 'A successful response.', content: json(ref('customerTemplatePresetsResponse')) }, ...errorResponses },
    },
  },
  '/v1/customer/info': {
    get: {
      operationId: 'Customer_GetInfo',
      summary: "This service's version and notices",
      tags: ['Tessera'],
      responses: { 200: { description: 'A successful response.', content: json(ref('customerInfoResponse')) }, ...errorResponses },
    },
  },
  '/v1/files/{key}': {
    get: {
      operationId: 'Files_Download',
      summary: 'Download a result file through a signed link',
      description: 'The link comes from GET /v1/customer/jobs/{jobId}/results; key may contain slashes. No API key is needed; the link expires.',
      tags: ['Tessera'],
      security: [],
      parameters: [
        { name: 'key', in: 'path', required: true, schema: { type: 'string' } },
        { name: 'expires', in: 'query', required: true, schema: { type: 'string' } },
        { name: 'signature', in: 'query', required: true, schema: { type: 'string' } },
      ],
      responses: {
        200: { description: 'The file.', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        403: { description: 'The link is invalid or expired.', content: json(ref('rpcStatus')) },
        ...errorResponses,
      },
    },
  },
  '/v1/auth/access_token': {
    post: {
      operationId: 'Auth_GetAccessToken',
      summary: 'Exchange an API key for a short-lived access token',
      description: 'The token works wherever the key does (Authorization header) until it expires.',
      tags: ['Tessera'],
      security: [],
      requestBody: { required: true, content: json(ref('authAccessTokenRequest')) },
      responses: { 200: { description: 'A successful response.', content: json(ref('authAccessTokenResponse')) }, ...errorResponses },
    },
  },
  '/v1/auth/keys': {
    get: {
      operationId: 'Auth_ListKeys',
      summary: "The account's keys and worker tokens, never their secrets",
      tags: ['Tessera'],
      responses: { 200: { description: 'A successful response.', content: json(ref('authKeysResponse')) }, ...errorResponses },
    },
    post: {
      operationId: 'Auth_CreateKey',
      summary: 'Make a key (or a worker token for the account\'s own workers), shown once',
      tags: ['Tessera'],
      requestBody: { required: false, content: json(ref('authCreateKeyRequest')) },
      responses: { 200: { description: 'A successful response.', content: json(ref('authCreateKeyResponse')) }, ...errorResponses },
    },
  },
  '/v1/auth/keys/{keyId}': {
    delete: {
      operationId: 'Auth_RevokeKey',
      summary: 'Revoke a key: it and every access token made from it stop working at once',
      description: 'The account\'s last customer key cannot be revoked (make another first). Other replicas stop accepting it within 2 s.',
      tags: ['Tessera'],
      parameters: [{ name: 'keyId', in: 'path', required: true, schema: { type: 'string', maxLength: 64 } }],
      responses: generic,
    },
  },
  '/v1/auth/user': {
    get: {
      operationId: 'Auth_GetUser',
      summary: 'The account of the key or token used',
      tags: ['Tessera'],
      responses: { 200: { description: 'A successful response.', content: json(ref('authUserResponse')) }, ...errorResponses },
    },
  },
  '/v2/accounts/{accountId}/jobs/{jobType}/{jobId}': {
    get: {
      operationId: 'Async_GetJob',
      summary: 'A job as an asynchronous job body (Bytescale style)',
      tags: ['Async jobs'],
      parameters: asyncPathParameters(true),
      responses: asyncResponses,
    },
    delete: {
      operationId: 'Async_CancelJob',
      summary: 'Cancel a job (Cancelling, then Cancelled once its tasks stopped)',
      tags: ['Async jobs'],
      parameters: asyncPathParameters(true),
      responses: asyncResponses,
    },
  },
  '/v2/accounts/{accountId}/jobs/{jobType}': {
    post: {
      operationId: 'Async_StartJob',
      summary: 'Create and start a job from a template and an input in one call',
      tags: ['Async jobs'],
      parameters: asyncPathParameters(false),
      requestBody: { required: true, content: json(ref('customerCreateJobRequest')) },
      responses: asyncResponses,
    },
  },
  '/healthz': {
    get: {
      operationId: 'Health_Check',
      summary: 'Liveness',
      tags: ['Tessera'],
      security: [],
      responses: { 200: { description: 'Alive.', content: json({ type: 'object', properties: { ok: { type: 'boolean' } } }) } },
    },
  },
};

/** DELETE shares its path with the seed's GET /jobs/{jobId}, so it is merged into that path item. */
export const DELETE_JOB = {
  operationId: 'Customer_DeleteJob',
  summary: 'Delete a job (aborting it if it runs) and its stored files',
  tags: ['Tessera'],
  parameters: [jobIdParameter],
  responses: generic,
};
