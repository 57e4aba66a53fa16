// The developer API (/v1/dev: apps, engines, templates — CONTRACT.md) and the job views added by
// the developer platform (logs, live events, tasks), in the same document as everything else.

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const errorResponses = { default: { description: 'An unexpected error response.', content: json(ref('rpcStatus')) } };
const ok = (schema: string, description = 'A successful response.') => ({ 200: { description, content: json(ref(schema)) }, ...errorResponses });
const tagParameter = { name: 'tag', in: 'path', required: true, description: '"name" (highest version), "name@M" or "name@M.m"', schema: { type: 'string', maxLength: 200 } };
const jobIdParameter = { name: 'jobId', in: 'path', required: true, schema: { type: 'string' } };

export const LOG_LEVEL_VALUES = ['UNKNOWN', 'TRACE', 'DEBUG', 'INFO', 'WARN', 'WARNING', 'ERROR', 'FATAL', 'PANIC'];
export const LOG_SERVICE_VALUES = ['PARTITIONER', 'ASSEMBLER', 'TASKRUNNER'];

export const DEVELOPER_SCHEMAS: Record<string, unknown> = {
  devPushRequest: {
    type: 'object',
    required: ['data'],
    additionalProperties: false,
    properties: { data: { type: 'string', minLength: 1, description: 'Base64 of a tar (or .tar.gz) of the folder holding manifest.json and app/.' } },
  },
  devComponent: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      version: { type: 'string' },
      type: { type: 'string', enum: ['app', 'partitioner', 'assembler'] },
      description: { type: 'string' },
      entrypoint: { type: 'string' },
      status: { type: 'string', enum: ['active', 'inactive'] },
      builtin: { type: 'boolean' },
      manifest: { type: 'object' },
      archive: { type: 'object', properties: { sha256: { type: 'string' }, size: { type: 'string', format: 'int64' } } },
      createdAt: { type: 'string', format: 'date-time' },
      updatedAt: { type: 'string', format: 'date-time' },
    },
  },
  devComponentResponse: { type: 'object', properties: { data: ref('devComponent') } },
  devComponentsResponse: { type: 'object', properties: { data: { type: 'array', items: ref('devComponent') } } },
  devStatusResponse: { type: 'object', properties: { status: { type: 'string', enum: ['active', 'inactive'] }, tag: { type: 'string' } } },
  devDownloadResponse: { type: 'object', properties: { data: { type: 'string', description: 'Base64 of the stored .tar.gz.' }, name: { type: 'string' }, version: { type: 'string' } } },
  devTemplateRequest: {
    type: 'object',
    required: ['id', 'app', 'partitioner', 'assembler'],
    properties: {
      id: { type: 'string', minLength: 1, maxLength: 64 },
      description: { type: 'string' },
      app: { type: 'string', minLength: 1 },
      partitioner: { type: 'string', minLength: 1 },
      assembler: { type: 'string', minLength: 1 },
      dataSource: ref('data_sourceDataSource'),
      dataDestination: ref('data_sourceDataSource'),
      params: ref('jobAppParams'),
      config: ref('tesseraJobConfig'),
      jobType: { type: 'string' },
      default_params: { ...ref('jobAppParams'), description: 'The older name of params (templates written for ByteNite); used where params is absent.' },
      presets: { type: 'array', maxItems: 100, items: ref('jobTemplatePreset') },
    },
  },
  jobTemplatePreset: {
    type: 'object',
    description: 'A named set of params a client may start a job from.',
    required: ['name', 'params'],
    properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, description: { type: 'string' }, params: ref('jobAppParams') },
  },
  customerTemplatePresetsResponse: { type: 'object', required: ['presets'], properties: { presets: { type: 'array', items: ref('jobTemplatePreset') } } },
  // The seed's jobJobTemplate and the template's default input, one object (an allOf of two would
  // refuse each other's fields under a strict reading).
  devTemplate: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      owner: { type: 'string' },
      description: { type: 'string' },
      app: { type: 'string' },
      partitioner: { type: 'string' },
      assembler: { type: 'string' },
      dataSource: { ...ref('data_sourceDataSource'), description: 'The input the template reads when a job names none ("bypass": it takes none); absent: a job must name one.' },
    },
  },
  devTemplateResponse: { type: 'object', properties: { data: ref('devTemplate') } },
  devTemplatesResponse: { type: 'object', properties: { data: { type: 'array', items: ref('jobJobTemplate') } } },
  customerLogsRequest: {
    type: 'object',
    required: ['jobId'],
    additionalProperties: false,
    properties: {
      jobId: { type: 'string', minLength: 1 },
      taskIds: { type: 'array', maxItems: 10000, items: { type: 'string', pattern: '^[0-9]{1,15}$' } },
      levels: { type: 'array', items: { type: 'string', enum: LOG_LEVEL_VALUES } },
      services: { type: 'array', items: { type: 'string', enum: LOG_SERVICE_VALUES } },
    },
  },
  customerLogEntry: {
    type: 'object',
    properties: { log: { type: 'string' }, timestamp: { type: 'string', format: 'date-time' }, level: { type: 'string' }, chunkIndex: { type: 'integer' }, attempt: { type: 'integer' }, stream: { type: 'string' } },
  },
  customerLogsResponse: {
    type: 'object',
    properties: {
      partitioner: { type: 'array', items: ref('customerLogEntry') },
      assembler: { type: 'array', items: ref('customerLogEntry') },
      taskrunner: { type: 'object', additionalProperties: { type: 'object', properties: { logs: { type: 'array', items: ref('customerLogEntry') } } } },
    },
  },
  customerJobLogsResponse: {
    type: 'object',
    properties: {
      logs: { type: 'array', items: { type: 'object' } },
      next: { type: 'string', format: 'int64', description: 'Pass as "after" to read on.' },
      ended: { type: 'boolean' },
    },
  },
  customerJobTasksResponse: { type: 'object', properties: { data: { type: 'array', items: { type: 'object' } } } },
};

const componentPaths = (group: 'apps' | 'engines', noun: string): Record<string, Record<string, unknown>> => {
  const id = group === 'apps' ? 'App' : 'Engine';
  return {
    [`/v1/dev/${group}`]: {
      post: { operationId: `Dev_Push${id}`, summary: `Push ${noun} (a new version, or replace an existing one)`, tags: ['Developer'], requestBody: { required: true, content: json(ref('devPushRequest')) }, responses: ok('devComponentResponse') },
      get: { operationId: `Dev_List${id}s`, summary: `List ${noun}s (yours and the built-ins, every version)`, tags: ['Developer'], responses: ok('devComponentsResponse') },
    },
    [`/v1/dev/${group}/{tag}`]: {
      get: { operationId: `Dev_Get${id}`, summary: `Get ${noun}`, tags: ['Developer'], parameters: [tagParameter], responses: ok('devComponentResponse') },
    },
    [`/v1/dev/${group}/{tag}/activate`]: {
      post: { operationId: `Dev_Activate${id}`, summary: `Activate a version of ${noun}`, tags: ['Developer'], parameters: [tagParameter], responses: ok('devComponentResponse') },
    },
    [`/v1/dev/${group}/{tag}/deactivate`]: {
      post: { operationId: `Dev_Deactivate${id}`, summary: `Deactivate a version of ${noun} (jobs stop resolving to it)`, tags: ['Developer'], parameters: [tagParameter], responses: ok('devComponentResponse') },
    },
    [`/v1/dev/${group}/{tag}/status`]: {
      get: { operationId: `Dev_${id}Status`, summary: `Whether a version of ${noun} is active`, tags: ['Developer'], parameters: [tagParameter], responses: ok('devStatusResponse') },
    },
    [`/v1/dev/${group}/{tag}/download`]: {
      get: { operationId: `Dev_Download${id}`, summary: `Download ${noun}'s archive`, tags: ['Developer'], parameters: [tagParameter], responses: ok('devDownloadResponse') },
    },
  };
};

export const DEVELOPER_PATHS: Record<string, Record<string, unknown>> = {
  ...componentPaths('apps', 'an app'),
  ...componentPaths('engines', 'a partitioning or assembling engine'),
  '/v1/dev/templates': {
    post: { operationId: 'Dev_PushTemplate', summary: 'Create or replace a template', tags: ['Developer'], requestBody: { required: true, content: json(ref('devTemplateRequest')) }, responses: ok('devTemplateResponse') },
    get: { operationId: 'Dev_ListTemplates', summary: 'List templates (yours and the built-ins)', tags: ['Developer'], responses: ok('devTemplatesResponse') },
  },
  '/v1/dev/templates/{templateId}': {
    get: { operationId: 'Dev_GetTemplate', summary: 'Get a template', tags: ['Developer'], parameters: [{ name: 'templateId', in: 'path', required: true, schema: { type: 'string' } }], responses: ok('devTemplateResponse') },
  },
  '/v1/customer/logs': {
    post: { operationId: 'Customer_GetLogs', summary: "A job's logs by service (ByteNite's shape)", tags: ['Tessera'], requestBody: { required: true, content: json(ref('customerLogsRequest')) }, responses: ok('customerLogsResponse') },
  },
  '/v1/customer/jobs/{jobId}/logs': {
    get: {
      operationId: 'Customer_GetJobLogs',
      summary: "A job's log lines; with follow=true, a text/event-stream of lines until the job ends",
      tags: ['Tessera'],
      parameters: [
        jobIdParameter,
        { name: 'after', in: 'query', required: false, schema: { type: 'string', format: 'int64' } },
        { name: 'limit', in: 'query', required: false, description: '1 to 10000 (default 1000)', schema: { type: 'integer', format: 'int64' } },
        { name: 'follow', in: 'query', required: false, schema: { type: 'string', enum: ['true', 'false', '1', '0'] } },
      ],
      responses: ok('customerJobLogsResponse'),
    },
  },
  '/v1/customer/jobs/{jobId}/tasks': {
    get: {
      operationId: 'Customer_GetJobTasks',
      summary: "A job's tasks: chunk, state, attempts, worker, CPU, memory",
      tags: ['Tessera'],
      parameters: [jobIdParameter, { name: 'pagination.limit', in: 'query', required: false, schema: { type: 'integer', format: 'int64' } }, { name: 'pagination.offset', in: 'query', required: false, schema: { type: 'integer', format: 'int64' } }],
      responses: ok('customerJobTasksResponse'),
    },
  },
  '/v1/customer/jobs/{jobId}/events': {
    get: {
      operationId: 'Customer_JobEvents',
      summary: "Server-sent events of one job: every state change and progress, from its creation to its end",
      tags: ['Tessera'],
      parameters: [jobIdParameter],
      responses: { 200: { description: 'text/event-stream; each data line is {"result": {"event", "data"}}.', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errorResponses },
    },
  },
  '/v1/customer/events': {
    get: {
      operationId: 'Customer_Events',
      summary: "Server-sent events of every job of the account, from now (or Last-Event-ID)",
      tags: ['Tessera'],
      responses: { 200: { description: 'text/event-stream; each data line is {"result": {"event", "data"}}.', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errorResponses },
    },
  },
};
