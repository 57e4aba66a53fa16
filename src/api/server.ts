import { randomUUID } from 'node:crypto';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.js';
import { registerAuthThrottle } from './auth.js';
import { DEFAULT_AUTH_THROTTLE, createAuthThrottle } from './auth-throttle.js';
import { registerClientRoutes } from './client-routes.js';
import { registerCustomerRoutes } from './customer-routes.js';
import { registerAsyncRoutes } from './async-routes.js';
import { registerAuthRoutes } from './auth-routes.js';
import { registerCors } from './cors.js';
import { clientErrorHandler, errorHandler, frameworkErrorHandler, notFoundHandler, unsupportedMediaType } from './errors.js';
import { registerDevRoutes } from './dev-routes.js';
import { registerFeedRoutes } from './feed-routes.js';
import { registerDataRoutes } from './data-routes.js';
import { registerFileRoutes } from './file-routes.js';
import { parseJsonBody } from './json-body.js';
import { registerObservabilityRoutes } from './observability-routes.js';
import { registerOperatorRoutes } from './operator-routes.js';
import { registerStatsRoutes } from './stats-routes.js';
import { registerUiRoutes } from './ui-routes.js';
import { registerWorkerRoutes } from './worker-routes.js';
import { openApiDocument } from './openapi.js';
import { createRequestValidator } from './validation.js';

// The HTTP server: one Fastify instance with the customer API, signed file links, the OpenAPI
// document and a health check. Errors from every route go through errors.ts.

const BODY_LIMIT = 1024 * 1024;

export interface ServerOptions {
  engine: Engine;
  logger: Logger | false;
}

/** Fastify's side of parseJsonBody. */
function parseJson(_request: unknown, body: string, done: (error: Error | null, value?: unknown) => void): void {
  let value: unknown;
  try {
    value = parseJsonBody(body);
  } catch (error) {
    return done(error as Error);
  }
  done(null, value);
}

/** TESSERA_TRUST_PROXY as Fastify takes it: a number of hops becomes proxy-addr's trust function. */
function trustProxyOption(setting: false | number | string[]): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof setting === 'number' ? (_address, hop) => hop < setting : setting;
}

export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger === false ? { logger: false } : { loggerInstance: options.logger as FastifyBaseLogger }),
    genReqId: () => randomUUID(),
    // On shutdown, close keep-alive connections too, or close() waits for clients to hang up.
    forceCloseConnections: true,
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    bodyLimit: BODY_LIMIT,
    // Keys travel in the Authorization header; never log request headers.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    // Behind a proxy, request.ip is the client's only when the proxy is trusted (TESSERA_TRUST_PROXY).
    trustProxy: trustProxyOption(options.engine.deps.config.trustProxy),
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJson);
  // ByteNite's document also lists application/x-protobuf; say so plainly instead of a generic 415.
  app.addContentTypeParser('application/x-protobuf', (_request, _payload, done) =>
    done(unsupportedMediaType('application/x-protobuf request bodies are not supported; send the same message as JSON')));
  registerCors(app, options.engine.deps.config.corsOrigins);
  // Slowing starts at a fifth of the limit (10 of the default 50), so a raised limit raises both.
  const limit = options.engine.deps.config.authFailuresPerMinute;
  registerAuthThrottle(app, createAuthThrottle({ ...DEFAULT_AUTH_THROTTLE, limit, slowAfter: Math.max(1, Math.ceil(limit / 5)) }));
  app.addHook('onRequest', async (request) => {
    const accept = request.headers.accept;
    if (accept && /application\/x-protobuf/i.test(accept) && !/json|\*\/\*|application\/\*/i.test(accept) && !request.url.startsWith('/v1/files/')) {
      throw unsupportedMediaType('application/x-protobuf responses are not supported; accept application/json', 406);
    }
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);

  const validate = createRequestValidator();
  const document = openApiDocument();
  app.get('/openapi.json', async () => document);
  registerObservabilityRoutes(app, options.engine);
  registerUiRoutes(app);
  registerAuthRoutes(app, options.engine, validate);
  registerAsyncRoutes(app, options.engine, validate);
  registerCustomerRoutes(app, options.engine, validate);
  registerClientRoutes(app, options.engine, validate);
  registerFeedRoutes(app, options.engine, validate);
  registerDevRoutes(app, options.engine, validate);
  registerFileRoutes(app, options.engine);
  registerDataRoutes(app, options.engine, validate);
  registerWorkerRoutes(app, options.engine);
  registerOperatorRoutes(app, options.engine, validate);
  registerStatsRoutes(app, options.engine, validate);
  await app.ready();
  return app;
}
