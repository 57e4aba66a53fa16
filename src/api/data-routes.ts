import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { invalidArgument } from '../domain/errors.js';
import type { DataSource } from '../domain/types.js';
import type { Engine } from '../engine/engine.js';
import { testDataSource } from '../engine/job-source.js';
import type { SecretInput } from '../engine/secrets.js';
import { customerAuth } from './auth.js';
import type { RequestValidator } from './validation.js';

// Data in and out: account secrets (/v1/auth/secrets), checking a data source
// (/v1/customer/datasource/test), and the file source's upload flow: the signed upload link
// (/v1/uploads/{jobId}) and uploadcompleted, under its current and its older path.

export function registerDataRoutes(app: FastifyInstance, engine: Engine, validate: RequestValidator): void {
  const generic = (request: FastifyRequest, message: string) => ({ ok: true, requestId: request.id, message });

  app.register(async (scope) => {
    scope.addHook('preHandler', customerAuth(engine));
    const secrets = engine.deps.secrets;

    scope.post('/v1/auth/secrets', async (request) => {
      const body = validate.body('Secrets_Create', request.body) as SecretInput;
      return { secret: await secrets.save(request.accountId, body) };
    });

    scope.get('/v1/auth/secrets', async (request) => ({ secrets: await secrets.list(request.accountId) }));

    scope.delete<{ Params: { secretType: string; id: string } }>('/v1/auth/secrets/:secretType/:id', async (request) => {
      await secrets.remove(request.accountId, request.params.secretType, request.params.id);
      return generic(request, `secret ${request.params.id} deleted`);
    });

    scope.post('/v1/customer/datasource/test', async (request) => {
      const body = validate.body('Customer_TestDataSource', request.body) as { dataSource: DataSource; listFiles?: boolean };
      return testDataSource(engine.deps, request.accountId, body.dataSource, body.listFiles === true);
    });

    const uploadCompleted = async (request: FastifyRequest<{ Params: { jobId: string } }>) => {
      const { job } = await engine.jobs.getJob(request.accountId, request.params.jobId);
      return generic(request, await engine.uploads.complete(request.accountId, job));
    };
    scope.patch('/v1/customer/jobs/:jobId/uploadcompleted', uploadCompleted);
    scope.post('/v1/customer/jobs/uploadcompleted/:jobId', uploadCompleted);
  });

  app.register(async (scope) => {
    // The body is the file, whatever its type, streamed to blob storage as it arrives (the 1 MiB
    // JSON body limit does not apply; the upload's own limit does).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.put<{ Params: { jobId: string }; Querystring: { expires?: string; signature?: string; part?: string } }>('/v1/uploads/:jobId', async (request) => {
      const body = request.body as Readable | undefined;
      if (!body || typeof body.pipe !== 'function') throw invalidArgument('body', 'send the file as the request body', 'curl -T data.csv "<tempUrl>"');
      const disposition = request.headers['content-disposition'];
      return engine.uploads.receive(request.params.jobId, request.query, typeof disposition === 'string' ? disposition : undefined, body);
    });
  });
}
