import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { packageRoot } from '../config/config.js';

// The dashboard (/ui) and the API reference (/docs): static files from ui/ and the two small
// libraries they import (Preact and htm, straight from node_modules as ES modules: no bundler, no
// build step, about 15 KB). Every file served is read once at start-up from a fixed list, so no
// request path ever reaches the file system.

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Browser builds of the libraries: package name, then the file inside the package. */
const VENDOR: Record<string, [string, string]> = {
  'preact.js': ['preact', 'dist/preact.module.js'],
  'hooks.js': ['preact', 'hooks/dist/hooks.module.js'],
  'htm.js': ['htm', 'dist/htm.module.js'],
};

/** A package's folder wherever npm put it (hoisted or not): found from its main entry. */
function packageDir(name: string): string {
  const entry = createRequire(import.meta.url).resolve(name);
  let dir = path.dirname(entry);
  while (path.basename(dir) !== name && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

export function registerUiRoutes(app: FastifyInstance): void {
  const root = packageRoot();
  const files = new Map<string, { body: Buffer; type: string }>();
  const uiDir = path.join(root, 'ui');
  for (const name of readdirSync(uiDir)) {
    const type = TYPES[path.extname(name)];
    if (type) files.set(name, { body: readFileSync(path.join(uiDir, name)), type });
  }
  for (const [name, [pkg, file]] of Object.entries(VENDOR)) files.set(`vendor/${name}`, { body: readFileSync(path.join(packageDir(pkg), file)), type: TYPES['.js']! });

  const send = (name: string) => async (_request: unknown, reply: FastifyReply) => {
    const file = files.get(name)!;
    // The pages hold no secrets (the key lives in the browser's session storage), so they may be cached briefly.
    return reply.type(file.type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(file.body);
  };
  app.get('/ui', send('index.html'));
  app.get('/docs', send('docs.html'));
  for (const name of files.keys()) app.get(`/ui/${name}`, send(name));
}
