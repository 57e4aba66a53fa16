import type { FastifyInstance } from 'fastify';
import { checkBlobKey } from '../blobs/blob-store.js';
import type { Engine } from '../engine/engine.js';
import { downloadName } from '../engine/result-names.js';

// Signed result links: /v1/files/<blob key>?expires=…&signature=…. No API key is needed (the
// link is the capability), so the signature and expiry are checked before anything is read.

export function registerFileRoutes(app: FastifyInstance, engine: Engine): void {
  app.get<{ Params: { '*': string }; Querystring: { expires?: string; signature?: string } }>('/v1/files/*', async (request, reply) => {
    const key = checkBlobKey(request.params['*']);
    engine.deps.signer.verify(key, request.query.expires, request.query.signature);
    const { stream, size } = await engine.deps.blobs.openRead(key);
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', size)
      .header('content-disposition', `attachment; filename="${downloadName(key)}"`)
      .header('cache-control', 'private, max-age=0')
      .send(stream);
  });
}
