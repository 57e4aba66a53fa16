// GET /v1/customer/stats (the dashboard's overview page) in the OpenAPI document.

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const errorResponses = { default: { description: 'An unexpected error response.', content: json(ref('rpcStatus')) } };
const count = (description: string) => ({ type: 'integer', minimum: 0, description });

export const STATS_SCHEMAS: Record<string, unknown> = {
  customerStatsBucket: {
    type: 'object',
    required: ['at', 'tasksDone', 'tasksFailed', 'jobsFailed', 'queued'],
    properties: {
      at: { type: 'string', format: 'date-time', description: 'The start of the minute.' },
      tasksDone: count('Tasks (partition, app and assemble steps) that succeeded in the minute.'),
      tasksFailed: count('Tasks that ended failed in the minute, with no attempt left (retried attempts are not counted).'),
      jobsFailed: count('Jobs that ended JOB_STATE_FAILED in the minute (aborted ones included).'),
      queued: count('Tasks waiting for a worker at the end of the minute (for the current minute: now).'),
    },
  },
  customerStatsResponse: {
    type: 'object',
    required: ['buckets', 'now'],
    properties: {
      buckets: { type: 'array', items: ref('customerStatsBucket'), description: 'One per minute, oldest first; the last is the current minute.' },
      now: {
        type: 'object',
        required: ['queued', 'running', 'workers'],
        properties: {
          queued: count('The account\'s tasks waiting for a worker.'),
          running: count('The account\'s tasks leased by a worker.'),
          workers: count('Connected workers that serve the account: its own and the shared fleet.'),
        },
      },
    },
  },
};

export const STATS_PATHS: Record<string, unknown> = {
  '/v1/customer/stats': {
    get: {
      operationId: 'Customer_GetStats',
      summary: 'The account\'s throughput, failures and queue depth per minute',
      description: 'Counts only the calling account\'s jobs and tasks, read from the database (every replica answers alike).',
      tags: ['Tessera'],
      parameters: [
        { name: 'minutes', in: 'query', required: false, description: 'How many minutes back, the current one included (1 to 1440; default 60).', schema: { type: 'integer', format: 'int64', minimum: 1, maximum: 1440, default: 60 } },
      ],
      responses: { 200: { description: 'A successful response.', content: json(ref('customerStatsResponse')) }, ...errorResponses },
    },
  },
};
