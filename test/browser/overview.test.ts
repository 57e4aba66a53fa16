import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SCREENSHOTS, browserSkip, chromiumMissing, launchChromium } from '../helpers/browser.js';
import { withFreshDb } from '../helpers/db.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// The overview page in Debian's Chromium: after a real job, its three charts drawn from
// GET /v1/customer/stats at desktop width and in a 390 px phone window, which it fits without
// scrolling sideways. Screenshots go to test-output/.


test('the overview page: throughput, queue and failure charts at 1280 px and at 390 px', { timeout: 180_000, ...browserSkip }, async () => {
  assert.ok(!chromiumMissing, chromiumMissing);
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db, { workerSlots: 2 });
    const browser = await launchChromium();
    try {
      const made = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', params: { partitioner: { chunks: 4 } } });
      await tessera.call('POST', `/v1/customer/jobs/${made.body.job.id}/run`);
      await waitFor('the job to complete', async () => (await tessera.call('GET', `/v1/customer/jobs/${made.body.job.id}`)).body.job.state === 'JOB_STATE_COMPLETE');

      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('response', (response) => void (response.status() >= 400 && problems.push(`HTTP ${response.status()} ${response.url()}`)));
      await page.goto(`${tessera.url}/ui`);
      await page.getByTestId('api-key').fill(tessera.apiKey);
      await page.getByTestId('sign-in').click();
      await page.getByTestId('jobs-table').waitFor();
      await page.getByRole('link', { name: 'Overview' }).click();
      await page.waitForURL(/#\/overview$/);

      for (const chart of ['chart-throughput', 'chart-queue', 'chart-failures']) await page.getByTestId(chart).locator('svg').waitFor();
      const done = Number(await page.getByTestId('chart-throughput-tasksDone').textContent());
      const fromApi = (await tessera.call('GET', '/v1/customer/stats')).body.buckets.reduce((sum: number, bucket: { tasksDone: number }) => sum + bucket.tasksDone, 0);
      assert.ok(done >= 1 && done === fromApi, `the job's tasks are counted (${done} on the page, ${fromApi} from the API)`);
      assert.ok((await page.getByTestId('chart-throughput').locator('svg rect').count()) >= 1, 'a bar for the minute the tasks ran');
      assert.equal(await page.getByTestId('chart-queue').locator('svg polygon').count(), 1);
      assert.equal(await page.getByTestId('chart-queue-queued').textContent(), '0');
      assert.equal(await page.getByTestId('chart-failures-tasksFailed').textContent(), '0');
      assert.match((await page.getByTestId('now-workers').textContent()) ?? '', /^[1-9]/);
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'overview.png'), fullPage: true });

      // Another window size: the three charts stack and nothing is wider than the phone.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.reload();
      await page.getByTestId('chart-failures').locator('svg').waitFor();
      const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
      assert.ok(overflow <= 0, `the overview is ${overflow}px wider than a 390px window`);
      const chartWidth = (await page.evaluate(`document.querySelector('[data-testid="chart-queue"] svg').getBoundingClientRect().width`)) as number;
      assert.ok(chartWidth > 200 && chartWidth <= 390, `the chart fills the phone's width (${chartWidth}px)`);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'overview-390.png'), fullPage: true });

      // A longer window asks the server again.
      const asked = page.waitForRequest((request) => request.url().includes('/v1/customer/stats?minutes=360'), { timeout: 10_000 });
      await page.getByTestId('overview-minutes').selectOption('360');
      await asked;
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await tessera.stop();
    }
  });
});
