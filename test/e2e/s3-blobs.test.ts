import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/blobs/s3.js';
import type { S3Settings } from '../../src/config/config.js';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// Tessera with its blobs in a real S3-compatible bucket (Swift's s3api): the word-count job runs
// end to end, its chunks, results and component archives are objects in the bucket, and the
// result link serves the bytes back.

const ENDPOINT = process.env.TESSERA_TEST_S3_ENDPOINT;
const REQUIRED = process.env.REQUIRE_SERVICES === '1';
const missing = ENDPOINT ? undefined : 'TESSERA_TEST_S3_ENDPOINT is not set (run scripts/s3-server.sh, or .ci/run)';

forEachEngine('a job with Tessera\'s blobs in an S3 bucket', async (db) => {
  if (missing && !REQUIRED) {
    console.error(`\n*** S3 end-to-end test SKIPPED: ${missing}. ***\n`);
    return;
  }
  assert.ok(!missing, `${missing}, and REQUIRE_SERVICES=1 requires the S3 server`);
  const s3: S3Settings = {
    bucket: `tessera-e2e-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`,
    endpoint: ENDPOINT,
    region: process.env.TESSERA_TEST_S3_REGION ?? 'us-east-1',
    accessKeyId: process.env.TESSERA_TEST_S3_ACCESS_KEY_ID ?? '',
    secretAccessKey: process.env.TESSERA_TEST_S3_SECRET_ACCESS_KEY ?? '',
    forcePathStyle: true,
    prefix: 'blobs/',
  };
  const client = createS3Client(s3);
  await client.send(new CreateBucketCommand({ Bucket: s3.bucket }));
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
