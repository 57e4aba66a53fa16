import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { packageRoot } from '../config/config.js';
import { JOB_DOCS_PATH } from '../engine/async-jobs.js';
import type { Engine } from '../engine/engine.js';
import type { JobInput } from '../engine/job-draft.js';
import { customerAuth } from './auth.js';
import { baseUrlOf } from './links.js';
import type { RequestValidator } from './validation.js';

// The Bytescale-style async job API (/v2, seed 004), who-am-I, and the page its jobDocs links to.

type JobPath = { accountId: string; jobType: string; jobId: string };

export function registerAsyncRoutes(app: FastifyInstance, engine: Engine, validate: RequestValidator): void {
  const { asyncJobs } = engine;
  const base = (request: Parameters<typeof baseUrlOf>[1]) => baseUrlOf(engine.deps.config, request);

  app.register(async (authed) => {
    authed.addHook('preHandler', customerAuth(engine));

    authed.get('/v1/auth/user', async (request) => ({ accountId: request.accountId, scope: 'customer' }));

    authed.get<{ Params: JobPath }>('/v2/accounts/:accountId/jobs/:jobType/:jobId', async (request) => asyncJobs.get(request.accountId, request.params, base(request)));

    authed.delete<{ Params: JobPath }>('/v2/accounts/:accountId/jobs/:jobType/:jobId', async (request) => asyncJobs.cancel(request.accountId, request.params, base(request)));

    authed.post<{ Params: Omit<JobPath, 'jobId'> }>('/v2/accounts/:accountId/jobs/:jobType', async (request) => {
      const input = validate.body('Async_StartJob', request.body) as JobInput;
      return asyncJobs.start(request.accountId, request.params, input, base(request));
    });
  });

  const docsFile = path.join(packageRoot(), 'docs', 'async-jobs.md');
  app.get(JOB_DOCS_PATH, async (_request, reply) => reply.type('text/markdown; charset=utf-8').send(await readFile(docsFile, 'utf8')));
}
