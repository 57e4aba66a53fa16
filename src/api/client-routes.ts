import type { FastifyInstance } from 'fastify';
import { packageVersion } from '../config/config.js';
import type { Engine } from '../engine/engine.js';
import { customerAuth } from './auth.js';
import type { RequestValidator } from './validation.js';

// Calls ByteNite's SDK makes beyond the seed's operations (CONTRACT.md): running tasks of several
// jobs at once, a template's presets, and the service's version. Scoped to the caller's account
// like every customer call.

/** Tessera's version as ByteNite's info answer spells one: {major, minor, tag}. */
function versionInfo(): { major: number; minor: number; tag: string } {
  const version = packageVersion();
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return { major, minor, tag: `v${version}` };
}

export function registerClientRoutes(app: FastifyInstance, engine: Engine, validate: RequestValidator): void {
  const version = versionInfo();
  app.register(
    async (customer) => {
      customer.addHook('preHandler', customerAuth(engine));

      customer.post('/jobs/runningTasks', async (request) => {
        const body = validate.body('Customer_GetRunningTasks', request.body) as { jobsIds: string[] };
        return { jobsRunningTasks: await engine.jobs.runningTasks(request.accountId, body.jobsIds) };
      });

      customer.get<{ Params: { templateId: string } }>('/jobs/templates/:templateId/presets', async (request) => ({
        presets: await engine.jobs.templatePresets(request.accountId, request.params.templateId),
      }));

      customer.get('/info', async () => ({ version, messages: [] }));
    },
    { prefix: '/v1/customer' },
  );
}
