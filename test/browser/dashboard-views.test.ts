import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { packageRoot } from '../../src/config/config.js';
import { endedJob, installComponents, installTemplate, runToEnd } from '../helpers/components.js';
import { SCREENSHOTS, browserSkip, chromiumMissing, launchChromium } from '../helpers/browser.js';
import { withFreshDb } from '../helpers/db.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// The dashboard's job views in Debian's Chromium: moving from a completed job to a failed one
// shows nothing of the first; every page fits a 390 px phone; the waterfall of a 1,000-task job;
// the log view's live tail, search and level filter; re-run; a job started from an uploaded file.
// Screenshots of each view at desktop and phone sizes go to test-output/.


const FAILING_APP = `import sys\nprint("about to fail", flush=True)\nsys.exit("${'this task failed on purpose with a long message '.repeat(6)}")\n`;
const CHATTY_APP = 'import sys, time\nfor n in range(3):\n    print(f"tick {n}", flush=True)\nprint("WARNING: the disk is fine", file=sys.stderr, flush=True)\ntime.sleep(6)\n';

async function noOverflow(page: Page, what: string): Promise<void> {
  const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
  assert.ok(overflow <= 0, `${what}: the page is ${overflow}px wider than the window`);
}

test('dashboard views: no stale job, phone layout, waterfall, live log tail, re-run, file upload', { timeout: 300_000, ...browserSkip }, async () => {
  assert.ok(!chromiumMissing, chromiumMissing);
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db, { workerSlots: 2 });
    const source = http.createServer((_request, response) => response.end('red green blue red\n'.repeat(30)));
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    const sourceUrl = `http://127.0.0.1:${(source.address() as AddressInfo).port}/colours.txt`;
    const browser = await launchChromium();
    mkdirSync(SCREENSHOTS, { recursive: true });
    const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
    try {
      await installComponents(tessera, [
        { name: 'fails', type: 'app', entrypoint: 'main.py', code: FAILING_APP },
        { name: 'chatty', type: 'app', entrypoint: 'main.py', code: CHATTY_APP },
      ]);
      await installTemplate(tessera, { id: 'fails', description: '', app: 'fails', partitioner: 'passthrough', assembler: 'passthrough', dataSource: { dataSourceDescriptor: 'bypass' } });
      await installTemplate(tessera, { id: 'chatty', description: '', app: 'chatty', partitioner: 'passthrough', assembler: 'passthrough' });
      const completed = await runToEnd(tessera, { templateId: 'word-count', name: 'colours', dataSource: { dataSourceDescriptor: 'url', params: { url: sourceUrl } }, params: { partitioner: { chunks: 3 } } });
      assert.equal(completed.state, 'JOB_STATE_COMPLETE', completed.errorMessage);
      const failed = await runToEnd(tessera, { templateId: 'fails', name: 'doomed', config: { maxTaskRetries: 0 } });
      assert.equal(failed.state, 'JOB_STATE_FAILED');

      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      await page.goto(`${tessera.url}/ui#/signin`);
      await page.getByTestId('api-key').fill(tessera.apiKey);
      await page.getByTestId('sign-in').click();
      await page.getByTestId('jobs-table').waitFor();
      // The job list: duration, progress and the error of the failed job.
      await page.getByTestId('jobs-table').getByText(/this task failed on purpose/).first().waitFor();
      await shot(page, 'jobs');

      // From the completed job to the failed one, by navigation: nothing of the first stays.
      await page.goto(`${tessera.url}/ui#/jobs/${completed.id}`);
      await page.getByTestId('results').waitFor();
      await page.getByTestId('logs').filter({ hasText: /TASKRUNNER/ }).waitFor();
      await page.evaluate(`location.hash = '#/jobs/${failed.id}'`);
      await page.getByTestId('job-state').filter({ hasText: 'FAILED' }).waitFor();
      await page.getByTestId('logs').filter({ hasText: /about to fail/ }).waitFor();
      assert.equal(await page.getByTestId('results').count(), 0, 'no results of the previous job');
      assert.doesNotMatch((await page.getByTestId('logs').textContent()) ?? '', /colours|red|green/, 'no log lines of the previous job');
      // The failed task names its worker.
      const failedRow = page.getByTestId('tasks-table').locator('tbody tr').filter({ hasText: 'TASKRUNNER' });
      assert.notEqual(((await failedRow.locator('td').nth(4).textContent()) ?? '').trim(), '', 'the failed task\'s worker is shown');
      await shot(page, 'job-failed');

      // Re-run the completed job: a new job, same template, params and input, that completes.
      await page.goto(`${tessera.url}/ui#/jobs/${completed.id}`);
      await page.getByTestId('job-state').filter({ hasText: 'COMPLETE' }).waitFor();
      await page.getByTestId('rerun').click();
      await page.waitForURL((url) => /#\/jobs\/[0-9A-Z]{26}$/.test(url.hash) && !url.hash.endsWith(completed.id));
      const rerunId = page.url().split('/').pop()!;
      const rerun = await endedJob(tessera, rerunId);
      assert.equal(rerun.state, 'JOB_STATE_COMPLETE', rerun.errorMessage);
      assert.deepEqual([rerun.templateId, rerun.params, rerun.dataSource.params.url], [completed.templateId, completed.params, sourceUrl]);
      assert.equal(rerun.name, 'colours (re-run)');

      // Live tail: a job opened before it runs; its lines arrive on the page as they are stored,
      // without a reload, and the search and the level filter apply to them.
      const chatty = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'chatty', dataSource: { dataSourceDescriptor: 'url', params: { url: sourceUrl } } });
      await page.goto(`${tessera.url}/ui#/jobs/${chatty.body.job.id}`);
      await page.getByTestId('logs').filter({ hasText: 'no log lines' }).waitFor();
      await tessera.call('POST', `/v1/customer/jobs/${chatty.body.job.id}/run`);
      await page.getByTestId('elapsed').filter({ hasText: /running for/ }).waitFor();
      await page.getByTestId('logs').filter({ hasText: /tick 2/ }).waitFor({ timeout: 30_000 });
      // Streamed: on the page while the task still runs (it sleeps 6 s after printing).
      assert.match((await page.getByTestId('job-state').textContent()) ?? '', /PARTITIONED|STARTED|UPLOADING|PARTITIONING/, 'the lines arrived before the task ended');
      await page.getByTestId('log-search').fill('tick 1');
      await page.getByTestId('logs').filter({ hasText: /tick 1/ }).waitFor();
      assert.doesNotMatch((await page.getByTestId('logs').textContent()) ?? '', /tick 0|tick 2/);
      await page.getByTestId('log-search').fill('');
      await page.getByTestId('log-level').selectOption('WARN');
      await page.getByTestId('logs').filter({ hasText: /the disk is fine/ }).waitFor({ timeout: 30_000 });
      assert.doesNotMatch((await page.getByTestId('logs').textContent()) ?? '', /tick/, 'INFO lines hidden at WARN');
      await endedJob(tessera, chatty.body.job.id);

      // A 1,000-task job's waterfall: every task drawn, and hovering names one.
      const big = await runToEnd(tessera, { templateId: 'noop', params: { partitioner: { chunks: 1000 } } });
      assert.equal(big.state, 'JOB_STATE_COMPLETE');
      await page.goto(`${tessera.url}/ui#/jobs/${big.id}`);
      const waterfall = page.getByTestId('waterfall');
      await waterfall.waitFor();
      await waitFor('every task in the waterfall', async () => (await waterfall.getAttribute('data-tasks')) === '1002', 30_000);
      await waterfall.hover({ position: { x: 40, y: 100 } });
      await page.getByTestId('waterfall-hover').filter({ hasText: /TASKRUNNER #\d+ · succeeded · attempt 1/ }).waitFor();
      await page.getByTestId('tasks-next').click();
      await shot(page, 'job-waterfall');

      // A job started from an uploaded file in the form.
      await page.goto(`${tessera.url}/ui#/jobs`);
      await page.getByTestId('new-template').selectOption('word-count');
      await page.getByTestId('new-file').setInputFiles({ name: 'words.txt', mimeType: 'text/plain', buffer: Buffer.from('one two two three three three\n') });
      await page.getByTestId('start-job').click();
      await page.waitForURL(/#\/jobs\/[0-9A-Z]{26}$/);
      const uploaded = await endedJob(tessera, page.url().split('/').pop()!);
      assert.equal(uploaded.state, 'JOB_STATE_COMPLETE', uploaded.errorMessage);
      assert.equal(uploaded.dataSource.dataSourceDescriptor, 'file');

      // Every page at 390 px: nothing wider than the window (the long error wraps, columns give way).
      await page.setViewportSize({ width: 390, height: 844 });
      for (const [name, route, ready] of [['jobs', '#/jobs', 'jobs-table'], ['job-failed', `#/jobs/${failed.id}`, 'job-error'], ['job-complete', `#/jobs/${completed.id}`, 'results'], ['job-waterfall', `#/jobs/${big.id}`, 'waterfall'], ['workers', '#/workers', 'workers-table'], ['registry', '#/registry', 'templates-table']] as const) {
        await page.goto(`${tessera.url}/ui${route}`);
        await page.getByTestId(ready).first().waitFor();
        if (name === 'job-complete') await page.getByTestId('logs').filter({ hasText: /TASKRUNNER/ }).waitFor();
        await noOverflow(page, route);
        await shot(page, `phone-${name}`);
      }
      await page.evaluate('sessionStorage.clear()');
      await page.goto(`${tessera.url}/ui#/signin`);
      await page.getByTestId('api-key').waitFor();
      await noOverflow(page, 'sign in');
      await shot(page, 'phone-signin');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      source.close();
      await tessera.stop();
    }
  });
});

test('npm run example prints a sign-in link that opens the job in the dashboard, the key kept out of the address', { timeout: 180_000, ...browserSkip }, async () => {
  assert.ok(!chromiumMissing, chromiumMissing);
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-example-'));
  const example = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'tessera.js'), 'example', 'word-count', '--home', home, '--keep'], { env: { PATH: process.env.PATH ?? '', HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  example.stdout.on('data', (chunk) => (output += chunk));
  example.stderr.on('data', (chunk) => (output += chunk));
  const browser = await launchChromium();
  try {
    await waitFor('the example to finish its job', async () => output.includes('Serving at'), 120_000);
    assert.match(output, /API key of account \w{7} \(shown only this once; keep it to sign in later\): tsk_/);
    const link = /the dashboard: (\S+)/.exec(output)?.[1];
    assert.ok(link && /#\/signin\?key=tsk_[^&]+&next=\/jobs\/[0-9A-Z]{26}$/.test(link), output);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(link);
    await page.getByTestId('job-state').filter({ hasText: 'COMPLETE' }).waitFor();
    assert.doesNotMatch(page.url(), /key=|tsk_/, 'the key is gone from the address');
    assert.match(page.url(), /#\/jobs\/[0-9A-Z]{26}$/);
  } finally {
    await browser.close();
    example.kill('SIGINT');
    await new Promise((resolve) => (example.exitCode === null ? example.once('exit', resolve) : resolve(undefined)));
    rmSync(home, { recursive: true, force: true });
  }
});
