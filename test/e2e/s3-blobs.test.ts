import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { createS3BlobStore } from '../../src/blobs/s3.js';
import { createKey } from '../../src/engine/accounts.js';
import { transferError } from '../../src/worker/http-link.js';
import { startProcess, stopProcess } from '../helpers/cluster.js';
import { forEachEngine, withFreshDb } from '../helpers/db.js';
import { newBucket, s3Available } from '../helpers/s3.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// Tessera with its blobs in a real S3-compatible bucket (Swift's s3api): the word-count job runs
// end to end, its chunks, results and component archives are objects in the bucket, and the
// result link serves the bytes back.

forEachEngine('a job with Tessera\'s blobs in an S3 bucket', async (db) => {
  if (!s3Available('S3 end-to-end test')) return;
  const { settings, client } = await newBucket('tessera-e2e');
  const s3 = { ...settings, prefix: 'blobs/' };
  const tessera = await startTestTessera(db, { blobs: { kind: 's3', s3 } });
  const source = http.createServer((_request, response) => response.end('red green blue red green red\n'.repeat(100)));
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(source.address() as AddressInfo).port}/colours.txt`;
  try {
    const jobId = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url } }, params: { partitioner: { chunks: 3 } } })).body.job.id;
    await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`);
    const job = await waitFor('the job to end', async () => {
      const current = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
      return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(current.state) ? current : undefined;
    });
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    const keys = ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? []).map((object) => object.Key!);
    assert.ok(keys.some((key) => key.startsWith('blobs/components/') && key.endsWith('.tgz')), `component archives in the bucket: ${keys.join(', ')}`);
    assert.ok(keys.some((key) => key.startsWith(`blobs/jobs/${jobId}/`)), 'the job\'s files too');
    const { results } = (await tessera.call('GET', `/v1/customer/jobs/${jobId}/results`)).body;
    const download = await fetch(results[0].link);
    assert.equal(download.status, 200);
    const counts = (await download.json()) as Record<string, number>;
    assert.deepEqual(counts, { red: 300, green: 200, blue: 100 }, 'the counts came back through the link');
  } finally {
    source.close();
    await tessera.stop();
  }
}, { timeout: 120_000 });

// With blobs in S3, a worker agent (a real `tessera worker` process with no S3 credentials)
// reads chunks and writes results through presigned bucket URLs: no file passes through the API
// server, as its request log shows.
test('a remote worker moves chunks and results straight to and from the bucket', { timeout: 120_000 }, async () => {
  if (!s3Available('S3 presigned transfer test')) return;
  await withFreshDb('pglite', async (db) => {
    const { settings } = await newBucket('tessera-presigned');
    const logs: string[] = [];
    const tessera = await startTestTessera(db, { blobs: { kind: 's3', s3: { ...settings, prefix: 'blobs/' } }, workerSlots: 0 }, { logs });
    const token = (await createKey(db, { scope: 'worker' })).apiKey;
    const home = mkdtempSync(path.join(tmpdir(), 'tessera-worker-'));
    const worker = await startProcess(['worker', '--server', tessera.url, '--token', token, '--slots', '2', '--json'], { TESSERA_HOME: home, TESSERA_LOG_LEVEL: 'warn', TESSERA_HOST_IMAGES: 'python:*' });
    try {
      // The input arrives through the upload link (stored in the bucket too).
      const created = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', params: { partitioner: { chunks: 4 } }, dataSource: { dataSourceDescriptor: 'file' } })).body.job;
      const uploaded = await fetch(created.dataSource.params.tempUrl, { method: 'PUT', body: 'red green blue red\n'.repeat(40) });
      assert.equal(uploaded.status, 200);
      assert.equal((await tessera.call('PATCH', `/v1/customer/jobs/${created.id}/uploadcompleted`)).status, 200);
      const jobId = created.id;
      await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`);
      const job = await waitFor('the job to end', async () => {
        const current = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
        return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(current.state) ? current : undefined;
      });
      assert.equal(job.state, 'JOB_STATE_COMPLETE', `${job.errorMessage}\n${worker.output()}`);
      assert.equal(job.numChunks, 4);
      const requests = logs.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'request').map((entry) => `${entry.method} ${entry.path}`);
      assert.ok(requests.some((request) => /^POST \/v1\/worker\/tasks\/\d+\/uploads$/.test(request)), 'the worker asked for upload links');
      assert.deepEqual(requests.filter((request) => /\/files\//.test(request)), [], 'no chunk or result went through the API server');
      // The customer's result link is the server's own (signed, expiring), served from the bucket.
      const { results } = (await tessera.call('GET', `/v1/customer/jobs/${jobId}/results`)).body;
      assert.deepEqual(await (await fetch(results[0].link)).json(), { red: 80, green: 40, blue: 40 });
    } finally {
      await stopProcess(worker);
      await tessera.stop();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

test('an expired presigned link is refused by the S3 server and reported as expired', { timeout: 60_000 }, async () => {
  if (!s3Available('S3 expired link test')) return;
  const { settings } = await newBucket('tessera-expiry');
  const store = createS3BlobStore(settings);
  await store.putStream('jobs/x/data.bin', Readable.from([Buffer.from('payload')]), 1024);
  const link = await store.presign!('jobs/x/data.bin', 'GET', 1);
  assert.equal(await (await fetch(link)).text(), 'payload', 'the fresh link works');
  await new Promise((resolve) => setTimeout(resolve, 2500));
  const response = await fetch(link);
  assert.equal(response.status, 403);
  const error = await transferError(response, 'downloading', link);
  assert.equal(error.code, 'DEADLINE_EXCEEDED');
  assert.match(error.message, /^downloading http:\/\/[^?]+\/jobs\/x\/data\.bin: the link expired \(AccessDenied: Request has expired\)$/);
  assert.ok(!error.message.includes('Signature='), 'the signature is not repeated');
});
