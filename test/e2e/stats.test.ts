import assert from 'node:assert/strict';
import { forEachEngine } from '../helpers/db.js';
import { checkResponse } from '../helpers/responses.js';
import type { TestTessera } from '../helpers/tessera.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// GET /v1/customer/stats, the overview page's numbers: what a real job did, counted per minute,
// for the calling account only; the queue's depth rebuilt from arrivals and departures.

type Bucket = { at: string; tasksDone: number; tasksFailed: number; jobsFailed: number; queued: number };
type Stats = { buckets: Bucket[]; now: { queued: number; running: number; workers: number } };

async function stats(tessera: TestTessera, key = tessera.apiKey, query = ''): Promise<Stats> {
  const answer = await tessera.call('GET', `/v1/customer/stats${query}`, undefined, key);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  checkResponse('get', '/v1/customer/stats', answer);
  return answer.body as Stats;
}

const total = (buckets: Bucket[], field: 'tasksDone' | 'tasksFailed' | 'jobsFailed') => buckets.reduce((sum, bucket) => sum + bucket[field], 0);

async function ended(tessera: TestTessera, jobId: string) {
  return waitFor(`job ${jobId} to end`, async () => {
    const job = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
    return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(job.state) ? job : undefined;
  });
}

forEachEngine('stats: a completed and a failed job counted per minute, for their account only; minutes checked', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 2 });
  try {
    const made = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', params: { partitioner: { chunks: 3 } } });
    await tessera.call('POST', `/v1/customer/jobs/${made.body.job.id}/run`);
    assert.equal((await ended(tessera, made.body.job.id)).state, 'JOB_STATE_COMPLETE');
    // Input from a port nobody listens on: the job fails.
    const broken = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url: 'http://127.0.0.1:9/none.txt' } } });
    await tessera.call('POST', `/v1/customer/jobs/${broken.body.job.id}/run`);
    assert.equal((await ended(tessera, broken.body.job.id)).state, 'JOB_STATE_FAILED');

    const tasks = [...(await tessera.call('GET', `/v1/customer/jobs/${made.body.job.id}/tasks`)).body.data, ...(await tessera.call('GET', `/v1/customer/jobs/${broken.body.job.id}/tasks`)).body.data];
    const mine = await stats(tessera);
    assert.equal(mine.buckets.length, 60, 'the last hour by default, one bucket a minute');
    assert.ok(mine.buckets.every((bucket, index) => index === 0 || Date.parse(bucket.at) - Date.parse(mine.buckets[index - 1]!.at) === 60_000), 'consecutive minutes, oldest first');
    assert.equal(total(mine.buckets, 'tasksDone'), tasks.filter((task: { state: string }) => task.state === 'succeeded').length);
    assert.ok(total(mine.buckets, 'tasksDone') >= 3, 'three app tasks at least');
    assert.equal(total(mine.buckets, 'tasksFailed'), tasks.filter((task: { state: string }) => task.state === 'failed').length);
    assert.equal(total(mine.buckets, 'jobsFailed'), 1);
    assert.deepEqual({ queued: mine.buckets.at(-1)!.queued, nowQueued: mine.now.queued, running: mine.now.running }, { queued: 0, nowQueued: 0, running: 0 });
    assert.ok(mine.now.workers >= 1, 'the embedded slots serve the account');
    assert.equal((await stats(tessera, tessera.apiKey, '?minutes=5')).buckets.length, 5);
    assert.equal((await stats(tessera, tessera.apiKey, '?minutes=1440')).buckets.length, 1440);

    // Another account: nothing of the first one's.
    const theirs = await stats(tessera, tessera.otherApiKey);
    assert.equal(theirs.buckets.length, 60);
    assert.deepEqual([total(theirs.buckets, 'tasksDone'), total(theirs.buckets, 'tasksFailed'), total(theirs.buckets, 'jobsFailed'), Math.max(...theirs.buckets.map((bucket) => bucket.queued))], [0, 0, 0, 0]);
    assert.deepEqual({ queued: theirs.now.queued, running: theirs.now.running }, { queued: 0, running: 0 });

    for (const bad of ['0', '1441', '-5', 'sixty', '1.5']) {
      const answer = await tessera.call('GET', `/v1/customer/stats?minutes=${bad}`);
      assert.equal(answer.status, 400, `minutes=${bad} → ${answer.status}`);
      assert.equal(answer.body.code, 3);
      assert.match(answer.body.message, new RegExp(`minutes "?${bad.replace('.', '\\.')}"?`), answer.body.message);
      checkResponse('get', '/v1/customer/stats', answer);
    }
    assert.equal((await tessera.call('GET', '/v1/customer/stats', undefined, null)).status, 401);
  } finally {
    await tessera.stop();
  }
});

forEachEngine('stats: tasks waiting with no worker are the queue, now and in the current minute; an abort empties it', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  try {
    const made = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count' });
    await tessera.call('POST', `/v1/customer/jobs/${made.body.job.id}/run`);
    const waiting = await waitFor('the partition task to be queued', async () => {
      const current = await stats(tessera);
      return current.now.queued > 0 ? current : undefined;
    }, 30_000);
    assert.deepEqual({ now: waiting.now.queued, lastMinute: waiting.buckets.at(-1)!.queued, running: waiting.now.running, workers: waiting.now.workers }, { now: 1, lastMinute: 1, running: 0, workers: 0 });
    assert.equal((await stats(tessera, tessera.otherApiKey)).now.queued, 0, 'another account\'s queue is its own');

    await tessera.call('POST', `/v1/customer/jobs/${made.body.job.id}/abort`);
    const after = await waitFor('the queue to empty', async () => {
      const current = await stats(tessera);
      return current.now.queued === 0 ? current : undefined;
    }, 30_000);
    assert.equal(after.buckets.at(-1)!.queued, 0);
    assert.equal(total(after.buckets, 'jobsFailed'), 1, 'an aborted job ends failed');
  } finally {
    await tessera.stop();
  }
});
