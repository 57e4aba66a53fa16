import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { SCREENSHOTS, browserSkip, chromiumMissing, launchChromium } from '../helpers/browser.js';
import { withFreshDb } from '../helpers/db.js';
import { startTestTessera } from '../helpers/tessera.js';

// /docs: Swagger UI from node_modules over /openapi.json, in Debian's Chromium. Its navigation
// (a link per tag, the filter), and an operation's "Try it out" sending a real request with the
// dashboard's key and showing the answer; no request leaves the server. Then the files behind it:
// a fixed list, with no way out of it by "../".


test('/docs: navigation by tag, and "Try it out" on GET /v1/customer/jobs answers with the account\'s jobs', { timeout: 180_000, ...browserSkip }, async () => {
  assert.ok(!chromiumMissing, chromiumMissing);
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db, { workerSlots: 0 });
    const browser = await launchChromium();
    try {
      const made = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', name: 'seen from the docs' });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('request', (request) => void (!request.url().startsWith(tessera.url) && !request.url().startsWith('data:') && problems.push(`a request elsewhere: ${request.url()}`)));
      page.on('response', (response) => void (response.status() >= 400 && problems.push(`HTTP ${response.status()} ${response.url()}`)));
      // Signed in to the dashboard first: /docs uses the same key.
      await page.goto(`${tessera.url}/ui`);
      await page.getByTestId('api-key').fill(tessera.apiKey);
      await page.getByTestId('sign-in').click();
      await page.getByTestId('jobs-table').waitFor();
      await page.getByRole('link', { name: 'API reference' }).click();
      await page.waitForURL(/\/docs$/);

      // Navigation: a link per tag in the header, each opening its section; the filter.
      const nav = page.getByTestId('docs-nav');
      await nav.locator('a[data-tag="Operator"]').waitFor();
      assert.deepEqual(await nav.locator('a.tag').allTextContents(), ['Jobs', 'Tessera', 'Async jobs', 'Developer', 'Secrets', 'Operator']);
      await nav.locator('a[data-tag="Operator"]').click();
      await page.locator('#operations-Operator-Operator_ListAccounts').waitFor();
      assert.ok((await page.locator('.opblock').count()) > 30, 'every operation is listed');
      await page.locator('.operation-filter-input').fill('Secrets');
      // The filter keeps the tags it matches: other tags' operations go.
      await page.locator('#operations-Tessera-Customer_CreateJob').waitFor({ state: 'detached', timeout: 10_000 });
      await page.locator('[id^="operations-Secrets-"]').first().waitFor();
      await page.locator('.operation-filter-input').fill('');

      // Try it out: GET /v1/customer/jobs with the key, and the answer on the page.
      const operation = page.locator('#operations-Jobs-Customer_GetAll');
      await operation.locator('.opblock-summary-control').click();
      await operation.locator('.try-out__btn').click();
      const sent = page.waitForRequest((request) => new URL(request.url()).pathname === '/v1/customer/jobs', { timeout: 10_000 });
      await operation.locator('.execute').click();
      const request = await sent;
      assert.equal((await request.allHeaders()).authorization, tessera.apiKey, 'the dashboard\'s key as the Authorization header');
      const answer = operation.locator('.live-responses-table');
      await answer.locator('.response-col_status').filter({ hasText: '200' }).waitFor({ timeout: 10_000 });
      await answer.getByText(made.body.job.id).first().waitFor();
      await answer.scrollIntoViewIfNeeded();
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'docs-try-it-out.png') });

      // At 390 px the reference still fits the window.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForFunction('document.documentElement.scrollWidth <= window.innerWidth', undefined, { timeout: 5_000 }).catch(() => {});
      const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
      const wide = await page.evaluate(`[...document.querySelectorAll('body *')].filter((element) => element.scrollWidth > window.innerWidth + 1 && ![...element.children].some((child) => child.scrollWidth > window.innerWidth + 1)).slice(0, 6).map((element) => element.tagName + '.' + element.className + ' ' + element.scrollWidth + ' ' + element.innerHTML.slice(0, 200)).join('\\n')`);
      assert.ok(overflow <= 0, `/docs is ${overflow}px wider than a 390px window:\n${wide}`);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'docs-390.png'), fullPage: false });
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await tessera.stop();
    }
  });
});

/** GET with the path sent exactly as written (fetch would resolve "../" before sending). */
function rawGet(url: string, rawPath: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const request = http.request({ hostname, port, path: rawPath, method: 'GET', timeout: 10_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('timeout', () => request.destroy(new Error(`no answer to GET ${rawPath} within 10 s`)));
    request.on('error', reject);
    request.end();
  });
}

test('/docs and /ui serve their fixed files only: "../" in any spelling is a 404', { timeout: 60_000 }, async () => {
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db, { workerSlots: 0 });
    try {
      for (const [route, type] of [['/docs', 'text/html'], ['/docs/', 'text/html'], ['/docs/swagger-ui-bundle.js', 'text/javascript'], ['/docs/swagger-ui.css', 'text/css'], ['/ui/docs.js', 'text/javascript']] as const) {
        const response = await fetch(`${tessera.url}${route}`);
        assert.equal(response.status, 200, route);
        assert.match(response.headers.get('content-type') ?? '', new RegExp(`^${type}`), route);
        assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      }
      assert.equal((await fetch(`${tessera.url}/docs/async-jobs`)).status, 200, 'the async jobs page keeps its path');
      const attempts = [
        '/docs/../package.json', '/docs/..%2fpackage.json', '/docs/..%2Fpackage.json', '/docs/%2e%2e%2fpackage.json', '/docs/%2e%2e/%2e%2e/etc/passwd',
        '/docs/..%5cpackage.json', '/docs/package.json', '/docs/index.html', '/docs/swagger-initializer.js', '/docs/swagger-ui.css%00.js', '/docs//etc/passwd',
        '/docs/%2fetc%2fpasswd', '/ui/../package.json', '/ui/..%2fpackage.json', '/ui/vendor/..%2f..%2fpackage.json', '/ui/%2e%2e%2fsrc%2fapi%2fui-routes.ts',
      ];
      for (const attempt of attempts) {
        const answer = await rawGet(tessera.url, attempt);
        assert.ok([400, 404].includes(answer.status), `GET ${attempt} → ${answer.status}`);
        assert.doesNotMatch(answer.body, /"name": "tessera"|root:x:0|registerUiRoutes|SwaggerUIBundle = /, `GET ${attempt} leaked a file`);
      }
    } finally {
      await tessera.stop();
    }
  });
});
