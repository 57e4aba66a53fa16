import type { FastifyInstance } from 'fastify';
import { notFound } from '../domain/errors.js';
import type { ComponentGroup } from '../engine/catalog.js';
import { BUILTIN_OWNER } from '../engine/catalog.js';
import type { Engine } from '../engine/engine.js';
import type { StoredComponent } from '../store/catalog.js';
import { getTemplate, listTemplates } from '../store/catalog.js';
import { customerAuth } from './auth.js';
import { templateJson } from './job-json.js';
import type { RequestValidator } from './validation.js';

// The developer API (/v1/dev, CONTRACT.md): push, list, get, activate, deactivate, status and
// download apps and engines; push, list and get templates. Everything is the caller's account's
// own, plus the built-ins, which every account sees and none can change.

type TagParams = { Params: { tag: string } };

export function componentJson(component: StoredComponent) {
  return {
    name: component.name,
    version: component.version,
    type: component.kind,
    description: component.manifest.description,
    entrypoint: component.manifest.entrypoint,
    status: component.active ? 'active' : 'inactive',
    builtin: component.owner === BUILTIN_OWNER,
    manifest: component.manifest,
    archive: { sha256: component.archive.sha256, size: String(component.archive.size) },
    createdAt: component.createdAt.toISOString(),
    updatedAt: component.updatedAt.toISOString(),
  };
}

export function registerDevRoutes(app: FastifyInstance, engine: Engine, validate: RequestValidator): void {
  const { catalog } = engine;
  // Base64 makes an archive a third larger; the JSON around it is small.
  const pushLimit = Math.ceil((engine.deps.config.maxArchiveBytes * 4) / 3) + 64 * 1024;

  app.register(
    async (dev) => {
      dev.addHook('preHandler', customerAuth(engine));

      for (const [group, id] of [['apps', 'App'], ['engines', 'Engine']] as [ComponentGroup, string][]) {
        dev.post(`/${group}`, { bodyLimit: pushLimit }, async (request) => {
          const { data } = validate.body(`Dev_Push${id}`, request.body) as { data: string };
          return { data: componentJson(await catalog.push(request.accountId, group, data)) };
        });
        dev.get(`/${group}`, async (request) => ({ data: (await catalog.list(request.accountId, group)).map(componentJson) }));
        dev.get<TagParams>(`/${group}/:tag`, async (request) => ({ data: componentJson(await catalog.get(request.accountId, group, request.params.tag)) }));
        dev.post<TagParams>(`/${group}/:tag/activate`, async (request) => ({ data: componentJson(await catalog.setActive(request.accountId, group, request.params.tag, true)) }));
        dev.post<TagParams>(`/${group}/:tag/deactivate`, async (request) => ({ data: componentJson(await catalog.setActive(request.accountId, group, request.params.tag, false)) }));
        dev.get<TagParams>(`/${group}/:tag/status`, async (request) => {
          const component = await catalog.get(request.accountId, group, request.params.tag);
          return { status: component.active ? 'active' : 'inactive', tag: `${component.name}@${component.version}` };
        });
        dev.get<TagParams>(`/${group}/:tag/download`, async (request) => {
          const { component, data } = await catalog.download(request.accountId, group, request.params.tag);
          return { data: data.toString('base64'), name: component.name, version: component.version };
        });
      }

      dev.post('/templates', async (request) => {
        const body = validate.body('Dev_PushTemplate', request.body);
        return { data: templateJson(await catalog.pushTemplate(request.accountId, body)) };
      });
      dev.get('/templates', async (request) => {
        const { templates } = await listTemplates(engine.deps.db, request.accountId, { limit: 10_000, offset: 0 });
        return { data: templates.map(templateJson) };
      });
      dev.get<{ Params: { templateId: string } }>('/templates/:templateId', async (request) => {
        // Template ids are 1-64 letters, digits, "-" and "_": anything else (NUL, huge strings) names none.
        const id = request.params.templateId;
        const template = /^[A-Za-z0-9_-]{1,64}$/.test(id) ? await getTemplate(engine.deps.db, request.accountId, id) : null;
        if (!template) throw notFound('template', request.params.templateId, 'GET /v1/dev/templates lists them');
        // Its declared source too: the CLI reads it to tell a template that takes no input ("bypass").
        return { data: { ...templateJson(template), ...(template.dataSource ? { dataSource: template.dataSource } : {}) } };
      });
    },
    { prefix: '/v1/dev' },
  );
}
