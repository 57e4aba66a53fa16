import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalidArgument, quote } from '../domain/errors.js';
import type { Job, Template } from '../domain/types.js';
import type { Engine } from '../engine/engine.js';
import type { JobInput } from '../engine/job-draft.js';
import type { JobFilter } from '../store/job-queries.js';
import { customerAuth } from './auth.js';
import { jobJson, paginationJson, templateJson } from './job-json.js';
import { baseUrlOf } from './links.js';
import type { RequestValidator } from './validation.js';

// The customer API under /v1/customer: the seed's eight operations with the seed's paths and
// shapes, plus create, run, abort, delete and templates (CONTRACT.md).

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;

type Params = { jobId: string };

function toInteger(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return typeof value === 'number' ? value : Number(value);
}

/** Limit and offset from `pagination.limit`/`pagination.offset` (query) or `{pagination: {limit, offset}}` (body). */
function page(raw: { limit?: unknown; offset?: unknown } | undefined, where: string) {
  const limit = toInteger(raw?.limit) ?? DEFAULT_PAGE_SIZE;
  const offset = toInteger(raw?.offset) ?? 0;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw invalidArgument(`${where}.limit`, `${where}.limit ${quote(raw?.limit)} must be from 1 to ${MAX_PAGE_SIZE}`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgument(`${where}.offset`, `${where}.offset ${quote(raw?.offset)} must be 0 or more`);
  return { limit, offset };
}

export function registerCustomerRoutes(app: FastifyInstance, engine: Engine, validate: RequestValidator): void {
  const jobs = engine.jobs;
  const baseUrl = (request: FastifyRequest) => baseUrlOf(engine.deps.config, request);
  const generic = (request: FastifyRequest, message: string) => ({ ok: true, requestId: request.id, message });
  const price = engine.deps.config.pricePerUnit;
  /** A job as JSON; a file job waiting for its upload carries the upload link in dataSource.params.tempUrl. */
  const single = (job: Job, template: Template | null, request: FastifyRequest) => {
    const view = jobJson(job, template, price);
    const tempUrl = engine.uploads.link(job, baseUrl(request));
    if (tempUrl) view.dataSource = { ...view.dataSource, params: { ...view.dataSource.params, tempUrl } };
    return { job: view, templateInfo: view.templateInfo };
  };

  app.register(
    async (customer) => {
      customer.addHook('preHandler', customerAuth(engine));

      customer.get('/jobs/templates', async (request) => {
        const query = validate.query('Customer_GetTemplates', request.query);
        const { limit, offset } = page({ limit: query['pagination.limit'], offset: query['pagination.offset'] }, 'pagination');
        const { templates, total } = await jobs.listTemplates(request.accountId, { limit, offset });
        return { pagination: paginationJson(total, offset, templates.length), data: templates.map(templateJson) };
      });

      customer.get('/jobs', async (request) => {
        const query = validate.query('Customer_GetAll', request.query);
        const { limit, offset } = page({ limit: query['pagination.limit'], offset: query['pagination.offset'] }, 'pagination');
        const orderBy = query.orderBy === undefined ? undefined : String(query.orderBy);
        const { views, total } = await jobs.listJobs(request.accountId, { limit, offset, orderBy });
        return { pagination: paginationJson(total, offset, views.length), data: views.map((view) => jobJson(view.job, view.template, price)) };
      });

      customer.post('/jobs/filter', async (request) => {
        const body = (validate.body('Customer_GetAllFiltered', request.body ?? {}) ?? {}) as {
          pagination?: { limit?: unknown; offset?: unknown };
          filters?: { field?: string; condition?: string; value?: unknown }[];
          orderBy?: string;
        };
        const { limit, offset } = page(body.pagination, 'pagination');
        const filters: JobFilter[] = (body.filters ?? []).map((filter, index) => {
          if (!filter.field) throw invalidArgument(`filters[${index}].field`, `filters[${index}].field is required`, 'for example "state" or "createdAt"');
          return { field: filter.field, condition: (filter.condition ?? 'FILTER_CONDITION_EQ') as JobFilter['condition'], value: filter.value };
        });
        const { views, total } = await jobs.listJobs(request.accountId, { limit, offset, orderBy: body.orderBy, filters });
        return { pagination: paginationJson(total, offset, views.length), data: views.map((view) => jobJson(view.job, view.template, price)) };
      });

      customer.post('/jobs', async (request) => {
        const body = validate.body('Customer_CreateJob', request.body) as JobInput & { jobId?: string };
        const { job, template } = await jobs.createJob(request.accountId, body);
        return single(job, template, request);
      });

      customer.get<{ Params: Params }>('/jobs/:jobId', async (request) => {
        const { job, template } = await jobs.getJob(request.accountId, request.params.jobId);
        return single(job, template, request);
      });

      customer.get<{ Params: Params }>('/jobs/:jobId/results', async (request) => {
        return { results: await jobs.getResults(request.accountId, request.params.jobId, baseUrl(request)) };
      });

      const patch = (path: string, operationId: string, toInput: (body: never) => JobInput) =>
        customer.patch<{ Params: Params }>(`/jobs/:jobId/${path}`, async (request) => {
          const body = validate.body(operationId, request.body) as never;
          const { job, template } = await jobs.updateJob(request.accountId, request.params.jobId, toInput(body));
          return single(job, template, request);
        });
      patch('datasource', 'Customer_SetJobDataSource', (body: Pick<JobInput, 'dataSource' | 'dataDestination'>) => ({
        ...(body.dataSource ? { dataSource: body.dataSource } : {}),
        ...(body.dataDestination ? { dataDestination: body.dataDestination } : {}),
      }));
      patch('params', 'Customer_SetJobParams', (body: NonNullable<JobInput['params']>) => ({ params: body }));
      patch('jobname', 'Customer_SetJobName', (body: string) => ({ name: body }));
      patch('configs', 'Customer_SetJobPreferences', (body: Record<string, unknown>) => ({ config: body }));

      customer.post<{ Params: Params }>('/jobs/:jobId/run', async (request) => {
        const body = validate.body('Customer_RunJob', request.body ?? undefined) as Record<string, unknown> | undefined;
        // Clients send {config: {...}}, the config fields flat, {} or nothing at all.
        const config = body && 'config' in body ? (body.config as Record<string, unknown> | undefined) : body;
        await jobs.runJob(request.accountId, request.params.jobId, config ?? undefined);
        return generic(request, `job ${request.params.jobId} started`);
      });

      customer.post<{ Params: Params }>('/jobs/:jobId/abort', async (request) => {
        return generic(request, await jobs.abortJob(request.accountId, request.params.jobId));
      });

      customer.delete<{ Params: Params }>('/jobs/:jobId', async (request) => {
        return generic(request, await jobs.deleteJob(request.accountId, request.params.jobId));
      });
    },
    { prefix: '/v1/customer' },
  );
}
