import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { SCREENSHOTS, browserSkip, chromiumMissing, launchChromium } from '../helpers/browser.js';
import { withFreshDb } from '../helpers/db.js';
import { startTestTessera } from '../helpers/tessera.js';

// The dashboard in Debian's Chromium, driven by playwright-core (no downloaded browser): sign in,
// start the word-count job from the page, watch it reach COMPLETE live, open a task's logs,
// follow a result link; the job page's screenshot goes to test-output/. Then the same pages in a
// phone-sized window, and the API reference.

const TEXT = 'It was the best of times, it was the worst of times, it was the age of wisdom.\n'.repeat(40);


test('the dashboard: sign in, start word-count, watch it complete live, read a task\'s logs, follow a result link', { timeout: 180_000, ...browserSkip }, async () => {
  assert.ok(!chromiumMissing, chromiumMissing);
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db, { workerSlots: 2 });
    const source = http.createServer((_request, response) => response.end(TEXT));
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    const sourceUrl = `http://127.0.0.1:${(source.address() as AddressInfo).port}/tale.txt`;
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      // Every failed request is a problem, but the one the wrong key below is meant to cause.
      page.on('response', (response) => {
        if (response.status() >= 400 && !(response.status() === 401 && response.url().endsWith('/v1/auth/user'))) problems.push(`HTTP ${response.status()} ${response.url()}`);
      });

      await page.goto(`${tessera.url}/ui`);
      // A wrong key is refused on the page.
      await page.getByTestId('api-key').fill('tsk_not-a-real-key');
      await page.getByTestId('sign-in').click();
      await page.getByTestId('sign-in-error').waitFor();
      await page.getByTestId('api-key').fill(tessera.apiKey);
      await page.getByTestId('sign-in').click();
      await page.getByTestId('jobs-table').waitFor();

      // Start the word-count job from the page.
      await page.getByTestId('new-template').selectOption('word-count');
      await page.getByTestId('new-url').fill(sourceUrl);
      await page.getByTestId('new-params').fill('{"partitioner": {"chunks": 5}}');
      await page.getByTestId('start-job').click();
      await page.waitForURL(/#\/jobs\/[0-9A-Z]{26}$/);
      const jobId = page.url().split('/').pop()!;

      // Live: the state changes on the page as the event stream reports it, without a reload.
      const seen = new Set<string>();
      const watcher = setInterval(() => void page.getByTestId('job-state').textContent().then((text) => text && seen.add(text), () => {}), 50);
      await page.getByTestId('job-state').filter({ hasText: 'COMPLETE' }).waitFor({ timeout: 60_000 });
      clearInterval(watcher);
      assert.ok(seen.size >= 2, `the page showed the job moving: ${[...seen].join(' → ')}`);
      await page.getByTestId('progress').filter({ hasText: '5/5 tasks done' }).waitFor();
      const timeline = await page.getByTestId('timeline').textContent();
      for (const state of ['NEW', 'STARTED', 'PARTITIONING', 'TASKS_COMPLETED', 'COMPLETE']) assert.match(timeline ?? '', new RegExp(state));
      // The state arrives by the event stream at once; the tasks list is re-read shortly after, so
      // wait for the assembler's row before counting.
      const rows = page.getByTestId('tasks-table').locator('tbody tr');
      await rows.filter({ hasText: 'ASSEMBLER' }).filter({ hasText: 'succeeded' }).waitFor();
      assert.equal(await rows.count(), 7, 'partitioner, five app tasks, assembler');

      // A task's logs.
      await page.getByTestId('logs-TASKRUNNER-2').click();
      await page.getByTestId('logs').filter({ hasText: /TASKRUNNER #2/ }).waitFor();
      assert.doesNotMatch((await page.getByTestId('logs').textContent()) ?? '', /TASKRUNNER #1 /, 'only that task\'s lines');

      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'job-page.png'), fullPage: true });

      // Follow a result link: it is the counts the job computed.
      // The file is served as an attachment (a click downloads it), so the browser context fetches the link.
      const href = await page.getByTestId('results').getByRole('link', { name: 'counts.json' }).getAttribute('href');
      assert.match(href ?? '', /\/v1\/files\/.*signature=/);
      const download = await page.context().request.get(href!);
      assert.equal(download.status(), 200);
      const counts = (await download.json()) as Record<string, number>;
      assert.equal(counts.times, 80);
      assert.equal(counts.it, 120);

      // The jobs list finds it by state and by name filter; the workers and registry pages load.
      await page.goto(`${tessera.url}/ui#/jobs`);
      await page.getByTestId('filter-state').selectOption('JOB_STATE_COMPLETE');
      await page.getByTestId('jobs-table').getByRole('link', { name: jobId }).waitFor();
      await page.getByTestId('filter-state').selectOption('JOB_STATE_FAILED');
      await page.getByTestId('jobs-table').getByRole('link', { name: jobId }).waitFor({ state: 'detached' });
      await page.goto(`${tessera.url}/ui#/workers`);
      // The embedded slots are the shared fleet: counted, not listed, for an account.
      await page.getByTestId('shared-fleet').filter({ hasText: /Shared fleet: 1 worker, \d+ slots?/ }).waitFor();
      await page.getByTestId('workers-table').waitFor();
      await page.goto(`${tessera.url}/ui#/registry`);
      await page.getByTestId('templates-table').getByText('word-count').first().waitFor();

      // A phone-sized window: the job page still fits (tables scroll inside their own box).
      await page.setViewportSize({ width: 375, height: 800 });
      await page.goto(`${tessera.url}/ui#/jobs/${jobId}`);
      await page.getByTestId('job-state').filter({ hasText: 'COMPLETE' }).waitFor();
      // Evaluated in the page (a string, so this file needs no DOM types).
      const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 375px window`);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'job-page-narrow.png'), fullPage: true });

      // The API reference is rendered from /openapi.json.
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.goto(`${tessera.url}/docs`);
      await page.locator('#operations-Tessera-Customer_CreateJob').waitFor();
      assert.ok((await page.locator('.opblock').count()) > 30);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      source.close();
      await tessera.stop();
    }
  });
});
