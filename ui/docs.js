// The API reference (/docs): Swagger UI (swagger-ui-dist, served from node_modules by
// src/api/ui-routes.ts) over /openapi.json. Operations are grouped by tag, with a filter and a
// link per operation (#/<tag>/<operationId>); "Try it out" sends real requests to this server.
// The dashboard's key (this tab's session storage) is filled in as the Authorization header; the
// Authorize button takes another. Nothing is fetched from anywhere but this server: no validator
// badge (validatorUrl null), no fonts or scripts from a CDN.
/* global SwaggerUIBundle */
const KEY = 'tessera.apiKey';

const ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  deepLinking: true,
  filter: true,
  docExpansion: 'list',
  defaultModelsExpandDepth: 0,
  displayOperationId: true,
  displayRequestDuration: true,
  validatorUrl: null,
  onComplete() {
    const key = sessionStorage.getItem(KEY);
    if (key) ui.preauthorizeApiKey('ApiKeyAuth', key);
    // A link per tag in the page's header: each opens its section.
    const nav = document.querySelector('[data-testid="docs-nav"]');
    const tags = [...new Set(Object.values(ui.specSelectors.specJson().toJS().paths).flatMap((item) => Object.values(item).flatMap((operation) => operation.tags || [])))];
    for (const tag of tags) {
      const link = document.createElement('a');
      link.className = 'tag';
      link.href = `#/${encodeURIComponent(tag)}`;
      link.textContent = tag;
      link.dataset.tag = tag;
      link.addEventListener('click', () => {
        ui.layoutActions.show(['operations-tag', tag], true);
        requestAnimationFrame(() => document.getElementById(`operations-tag-${tag.replace(/\s/g, '_')}`)?.scrollIntoView());
      });
      nav.append(link);
    }
  },
});
