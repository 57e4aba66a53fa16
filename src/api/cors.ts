import type { FastifyInstance } from 'fastify';

// CORS for browser apps calling the API (off unless TESSERA_CORS_ORIGINS is set). Credentials
// travel in the Authorization header, never in cookies, so no Allow-Credentials is needed.

const ALLOWED_METHODS = 'GET, POST, PATCH, DELETE, OPTIONS';
const ALLOWED_HEADERS = 'Authorization, Content-Type';
const PREFLIGHT_CACHE_SECONDS = 600;

export function registerCors(app: FastifyInstance, origins: string[]): void {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    const permitted = origin !== undefined && (any || allowed.has(origin));
    if (permitted) {
      void reply.header('access-control-allow-origin', any ? '*' : origin).header('access-control-expose-headers', 'Content-Disposition, Content-Length');
      if (!any) void reply.header('vary', 'Origin');
    }
    // A preflight is answered here, before routing (no route has OPTIONS); a refused origin
    // gets no CORS headers, so the browser blocks the real request.
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method']) {
      if (permitted) {
        void reply.header('access-control-allow-methods', ALLOWED_METHODS).header('access-control-allow-headers', ALLOWED_HEADERS).header('access-control-max-age', PREFLIGHT_CACHE_SECONDS);
      }
      return reply.status(204).send();
    }
  });
}
