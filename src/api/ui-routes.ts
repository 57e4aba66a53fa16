import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { packageRoot } from '../config/config.js';

// The dashboard (/ui) and the API reference (/docs): static files from ui/, the two small
// libraries the dashboard imports (Preact and htm, straight from node_modules as ES modules: no
// bundler, no build step, about 15 KB), and Swagger UI's browser bundle for /docs (from
// swagger-ui-dist's folder). Every file served is read once at start-up from a fixed list and
// looked up by its exact name, so no request path ever reaches the file system.

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

/** Swagger UI's files served under /docs/ (by these names only), from swagger-ui-dist. */
const DOCS_FILES = ['swagger-ui.css', 'swagger-ui-bundle.js'];

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

  const swaggerDir = packageDir('swagger-ui-dist');
  const docsFiles = new Map(DOCS_FILES.map((name) => [name, { body: readFileSync(path.join(swaggerDir, name)), type: TYPES[path.extname(name)]! }]));

  const sendFile = (file: { body: Buffer; type: string }, response: FastifyReply) =>
    // The pages hold no secrets (the key lives in the browser's session storage), so they may be cached briefly.
    response.type(file.type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(file.body);
  const send = (name: string) => async (_request: unknown, response: FastifyReply) => sendFile(files.get(name)!, response);
  app.get('/ui', send('index.html'));
  app.get('/docs', send('docs.html'));
  // Only the names in DOCS_FILES: anything else, "../" and its encodings included, is a 404.
  app.get<{ Params: { file: string } }>('/docs/:file', async (request, response) => {
    const file = docsFiles.get(request.params.file);
    return file ? sendFile(file, response) : response.callNotFound();
  });
  for (const name of files.keys()) app.get(`/ui/${name}`, send(name));
}
