import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/blobs/s3.js';
import type { S3Settings } from '../../src/config/config.js';

// The test S3 server (OpenStack Swift with s3api, started by scripts/s3-server.sh; .ci/run sets
// TESSERA_TEST_S3_*). Locally a test may skip loudly without it; with REQUIRE_SERVICES=1 it fails.

export const S3_ENDPOINT = process.env.TESSERA_TEST_S3_ENDPOINT;
export const S3_ACCESS_KEY_ID = process.env.TESSERA_TEST_S3_ACCESS_KEY_ID ?? '';
export const S3_SECRET_ACCESS_KEY = process.env.TESSERA_TEST_S3_SECRET_ACCESS_KEY ?? '';
export const S3_REGION = process.env.TESSERA_TEST_S3_REGION ?? 'us-east-1';

/** True when the test should go on; false (after a loud message) when it should skip. */
export function s3Available(what: string): boolean {
  const missing = S3_ENDPOINT ? undefined : 'TESSERA_TEST_S3_ENDPOINT is not set (run scripts/s3-server.sh, or .ci/run)';
  if (!missing) return true;
  assert.ok(process.env.REQUIRE_SERVICES !== '1', `${missing}, and REQUIRE_SERVICES=1 requires the S3 server`);
  console.error(`\n*** ${what} SKIPPED: ${missing}. ***\n`);
  return false;
}

/** A new, empty bucket on the test server and a client for it. */
export async function newBucket(prefix: string): Promise<{ settings: S3Settings; client: S3Client }> {
  const settings: S3Settings = {
    bucket: `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`,
    endpoint: S3_ENDPOINT,
    region: S3_REGION,
    accessKeyId: S3_ACCESS_KEY_ID,
    secretAccessKey: S3_SECRET_ACCESS_KEY,
    forcePathStyle: true,
    prefix: '',
  };
  const client = createS3Client(settings);
  await client.send(new CreateBucketCommand({ Bucket: settings.bucket }));
  return { settings, client };
}
