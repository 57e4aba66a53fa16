// The operator's API (/v1/operator, an operator key) and the workers lists in the OpenAPI document (issue 13).

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const errorResponses = { default: { description: 'An unexpected error response.', content: json(ref('rpcStatus')) } };
const ok = (schema: unknown) => ({ 200: { description: 'A successful response.', content: json(schema) }, ...errorResponses });
const accountIdParameter = { name: 'accountId', in: 'path', required: true, schema: { type: 'string', maxLength: 64 } };
const keyIdParameter = { name: 'keyId', in: 'path', required: true, schema: { type: 'string', maxLength: 64 } };
const operatorSecurity = [{ operatorKey: [] }];
const quota = (description: string) => ({ type: ['integer', 'string', 'null'], description: `${description} int64 (a number or a string of digits); null: no limit.` });

export const OPERATOR_SCHEMAS: Record<string, unknown> = {
  operatorQuotas: {
    type: 'object',
    additionalProperties: false,
    description: 'An account\'s limits. A quota reached answers code 8 (RESOURCE_EXHAUSTED, HTTP 429) naming it; tasks already running beyond a lowered maxSharedTasks finish, new ones wait.',
    properties: {
      maxSharedTasks: quota('Tasks of the account running on shared workers at once (its own workers do not count).'),
      maxStoredBytes: quota('Bytes its jobs (uploads, chunks, results) and components hold in the blob store; reached, new jobs, runs, uploads and pushes are refused.'),
      maxJobsPerMinute: quota('Jobs it may create in any minute.'),
    },
  },
  operatorAccount: {
    type: 'object',
    required: ['accountId', 'name', 'createdAt', 'disabledAt', 'quotas', 'usage'],
    properties: {
      accountId: { type: 'string' },
      name: { type: 'string' },
      createdAt: { type: 'string', format: 'date-time' },
      disabledAt: { type: ['string', 'null'], format: 'date-time' },
      quotas: ref('operatorQuotas'),
      usage: {
        type: 'object',
        properties: {
          storedBytes: { type: 'integer' },
          sharedTasks: { type: 'integer', description: 'Its tasks running on shared workers now.' },
          jobsLastMinute: { type: 'integer' },
          runningJobs: { type: 'integer' },
        },
      },
    },
  },
  operatorAccountsResponse: { type: 'object', required: ['accounts'], properties: { accounts: { type: 'array', items: ref('operatorAccount') } } },
  operatorAccountResponse: { type: 'object', required: ['account'], properties: { account: ref('operatorAccount'), abortedJobs: { type: 'integer', description: 'Running jobs aborted by disabling the account.' } } },
  operatorCreateAccountRequest: {
    type: 'object',
    additionalProperties: false,
    properties: { name: { type: 'string', maxLength: 256 }, quotas: ref('operatorQuotas') },
  },
  operatorCreateAccountResponse: {
    type: 'object',
    required: ['account', 'apiKey'],
    properties: { account: ref('operatorAccount'), apiKey: { type: 'string', description: 'The account\'s first key: shown this once (only a hash is stored).' } },
  },
  operatorUpdateAccountRequest: {
    type: 'object',
    additionalProperties: false,
    properties: {
      quotas: ref('operatorQuotas'),
      disabled: { type: 'boolean', description: 'true: its keys and tokens stop (at once on this server, within 2 s on others) and its running jobs are aborted; false: enabled again.' },
    },
  },
  operatorCreateKeyRequest: {
    type: 'object',
    additionalProperties: false,
    properties: { scope: { type: 'string', enum: ['operator', 'worker'], default: 'worker', description: 'worker: a token for a shared worker (it serves every account); operator: another operator key.' } },
  },
  workerView: {
    type: 'object',
    required: ['id', 'name', 'region', 'slots', 'cpus', 'memoryGb', 'gpus', 'startedAt', 'lastSeenAt', 'runningTasks', 'pool'],
    properties: {
      id: { type: 'string' },
      name: { type: 'string', description: 'The machine\'s host name.' },
      region: { type: 'string' },
      slots: { type: 'integer' },
      cpus: { type: 'number' },
      memoryGb: { type: 'number' },
      gpus: { type: 'array', items: { type: 'string' } },
      startedAt: { type: 'string', format: 'date-time' },
      lastSeenAt: { type: 'string', format: 'date-time' },
      runningTasks: { type: 'integer' },
      runtime: { type: ['object', 'null'], description: 'What the worker says of its sandbox, limits, network and container runtime.' },
      pool: { type: 'string', description: '"shared", or the id of the account whose own worker it is.' },
    },
  },
  customerWorkersResponse: {
    type: 'object',
    required: ['data', 'shared'],
    properties: {
      data: { type: 'array', items: ref('workerView'), description: 'The account\'s own workers (tokens from POST /v1/auth/keys {"scope": "worker"}).' },
      shared: { type: 'object', description: 'The shared fleet, in numbers only.', properties: { workers: { type: 'integer' }, slots: { type: 'integer' } } },
    },
  },
  operatorWorkersResponse: { type: 'object', required: ['data'], properties: { data: { type: 'array', items: ref('workerView') } } },
};

export const OPERATOR_PATHS: Record<string, unknown> = {
  '/v1/customer/workers': {
    get: {
      operationId: 'Customer_ListWorkers',
      summary: 'The account\'s own connected workers, and the size of the shared fleet',
      tags: ['Tessera'],
      responses: ok(ref('customerWorkersResponse')),
    },
  },
  '/v1/operator/accounts': {
    get: {
      operationId: 'Operator_ListAccounts',
      summary: 'Customer accounts, oldest first, with their quotas and what they use',
      tags: ['Operator'],
      security: operatorSecurity,
      parameters: [
        { name: 'pagination.limit', in: 'query', required: false, schema: { type: 'integer', format: 'int64' } },
        { name: 'pagination.offset', in: 'query', required: false, schema: { type: 'integer', format: 'int64' } },
      ],
      responses: ok(ref('operatorAccountsResponse')),
    },
    post: {
      operationId: 'Operator_CreateAccount',
      summary: 'Make a customer account; its first key is in this answer only',
      tags: ['Operator'],
      security: operatorSecurity,
      requestBody: { required: false, content: json(ref('operatorCreateAccountRequest')) },
      responses: ok(ref('operatorCreateAccountResponse')),
    },
  },
  '/v1/operator/accounts/{accountId}': {
    get: {
      operationId: 'Operator_GetAccount',
      summary: 'One account, its quotas and what it uses',
      tags: ['Operator'],
      security: operatorSecurity,
      parameters: [accountIdParameter],
      responses: ok(ref('operatorAccountResponse')),
    },
    patch: {
      operationId: 'Operator_UpdateAccount',
      summary: 'Set an account\'s quotas; disable it (keys stop, running jobs aborted) or enable it',
      tags: ['Operator'],
      security: operatorSecurity,
      parameters: [accountIdParameter],
      requestBody: { required: true, content: json(ref('operatorUpdateAccountRequest')) },
      responses: ok(ref('operatorAccountResponse')),
    },
  },
  '/v1/operator/workers': {
    get: {
      operationId: 'Operator_ListWorkers',
      summary: 'Every connected worker, shared and private, with its pool',
      tags: ['Operator'],
      security: operatorSecurity,
      responses: ok(ref('operatorWorkersResponse')),
    },
  },
  '/v1/operator/keys': {
    get: {
      operationId: 'Operator_ListKeys',
      summary: 'The operator keys and shared workers\' tokens, never their secrets',
      tags: ['Operator'],
      security: operatorSecurity,
      responses: ok(ref('authKeysResponse')),
    },
    post: {
      operationId: 'Operator_CreateKey',
      summary: 'Make a shared worker\'s token (or another operator key), shown once',
      tags: ['Operator'],
      security: operatorSecurity,
      requestBody: { required: false, content: json(ref('operatorCreateKeyRequest')) },
      responses: ok(ref('authCreateKeyResponse')),
    },
  },
  '/v1/operator/keys/{keyId}': {
    delete: {
      operationId: 'Operator_RevokeKey',
      summary: 'Revoke an operator key or a shared worker\'s token (its workers stop)',
      description: 'The last operator key cannot be revoked (make another first).',
      tags: ['Operator'],
      security: operatorSecurity,
      parameters: [keyIdParameter],
      responses: ok(ref('customerGenericResponse')),
    },
  },
};
