// Data sources, uploads and account secrets in the OpenAPI document (issue 7; CONTRACT.md).

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const errorResponses = { default: { description: 'An unexpected error response.', content: json(ref('rpcStatus')) } };
const ok = (schema: unknown) => ({ 200: { description: 'A successful response.', content: json(schema) }, ...errorResponses });
const jobIdParameter = { name: 'jobId', in: 'path', required: true, schema: { type: 'string' } };
const generic = ok(ref('customerGenericResponse'));

export const DATA_SCHEMAS: Record<string, unknown> = {
  secretsSecret: {
    type: 'object',
    properties: {
      id: { type: 'string', minLength: 1, maxLength: 128 },
      name: { type: 'string', maxLength: 256 },
      secretType: { type: 'string', enum: ['aws', 's3', 'gcp', 'storj', 'other'], description: '"s3" is the older name of "aws".' },
      accessKey: { type: 'string', maxLength: 1024 },
      expiresAt: { type: 'string', format: 'date-time' },
      params: { type: 'object' },
    },
  },
  secretsCreateRequest: {
    type: 'object',
    required: ['secret', 'secretKey'],
    additionalProperties: false,
    properties: { secret: ref('secretsSecret'), secretKey: { type: 'string', minLength: 1, maxLength: 8192, description: 'Stored sealed (AES-256-GCM); never returned.' } },
  },
  secretsSecretView: {
    type: 'object',
    description: 'A secret as the API shows it: never its secret key.',
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      secretType: { type: 'string' },
      accessKey: { type: 'string' },
      expiresAt: { type: ['string', 'null'] },
      params: { type: 'object' },
      createdAt: { type: 'string' },
      updatedAt: { type: 'string' },
      hasSecretKey: { type: 'boolean' },
    },
  },
  datasourceTestRequest: {
    type: 'object',
    required: ['dataSource'],
    additionalProperties: false,
    properties: { dataSource: ref('data_sourceDataSource'), listFiles: { type: 'boolean' } },
  },
  datasourceFile: { type: 'object', properties: { name: { type: 'string' }, path: { type: 'string' }, size: { type: 'string', format: 'int64' } } },
  datasourceDirectory: {
    type: 'object',
    description: "ByteNite's directory model: the files listed (with listFiles) under their folders. Each file carries Tessera's size beside its name and path.",
    required: ['name', 'path', 'files', 'directories'],
    properties: {
      name: { type: 'string' },
      path: { type: 'string' },
      files: { type: 'array', items: ref('datasourceFile') },
      directories: { type: 'array', items: ref('datasourceDirectory') },
    },
  },
  datasourceTestResponse: {
    type: 'object',
    properties: {
      filename: { type: 'string' },
      path: { type: 'string' },
      size: { type: 'string', format: 'int64' },
      tempUrl: { type: 'string' },
      files: ref('datasourceDirectory'),
    },
  },
  uploadPartResponse: {
    type: 'object',
    properties: { part: { type: 'integer' }, size: { type: 'integer' }, uploadedBytes: { type: 'integer' } },
  },
};

export const DATA_PATHS: Record<string, Record<string, unknown>> = {
  '/v1/auth/secrets': {
    post: {
      operationId: 'Secrets_Create',
      summary: 'Save a secret (replaces one with the same type and id)',
      tags: ['Secrets'],
      requestBody: { required: true, content: json(ref('secretsCreateRequest')) },
      responses: ok({ type: 'object', properties: { secret: ref('secretsSecretView') } }),
    },
    get: {
      operationId: 'Secrets_List',
      summary: "The account's secrets, without their secret keys",
      tags: ['Secrets'],
      responses: ok({ type: 'object', properties: { secrets: { type: 'array', items: ref('secretsSecretView') } } }),
    },
  },
  '/v1/auth/secrets/{secretType}/{id}': {
    delete: {
      operationId: 'Secrets_Delete',
      summary: 'Delete a secret',
      tags: ['Secrets'],
      parameters: [
        { name: 'secretType', in: 'path', required: true, schema: { type: 'string' } },
        { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
      ],
      responses: generic,
    },
  },
  '/v1/customer/datasource/test': {
    post: {
      operationId: 'Customer_TestDataSource',
      summary: 'Check a data source and list its files',
      tags: ['Tessera'],
      requestBody: { required: true, content: json(ref('datasourceTestRequest')) },
      responses: ok(ref('datasourceTestResponse')),
    },
  },
  '/v1/customer/jobs/{jobId}/uploadcompleted': {
    patch: { operationId: 'Customer_UploadCompleted', summary: 'Say the upload of a file job is complete', tags: ['Tessera'], parameters: [jobIdParameter], responses: generic },
  },
  '/v1/customer/jobs/uploadcompleted/{jobId}': {
    post: { operationId: 'Customer_UploadCompletedOld', summary: 'Say the upload of a file job is complete (older path)', tags: ['Tessera'], parameters: [jobIdParameter], responses: generic },
  },
  '/v1/uploads/{jobId}': {
    put: {
      operationId: 'Uploads_Put',
      summary: "Upload a file job's input through its signed link (dataSource.params.tempUrl)",
      description: 'The body is the file, streamed; a large file may go as parts 1, 2, 3… (?part=N). Content-Disposition: attachment; filename="…" names it. No API key is needed; the link expires.',
      tags: ['Tessera'],
      security: [],
      parameters: [
        jobIdParameter,
        { name: 'expires', in: 'query', required: true, schema: { type: 'string' } },
        { name: 'signature', in: 'query', required: true, schema: { type: 'string' } },
        { name: 'part', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 10000 } },
      ],
      requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
      responses: ok(ref('uploadPartResponse')),
    },
  },
};
