import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import type { BlobStore } from '../../src/blobs/blob-store.js';
import { ABANDONED_UPLOAD_MS, temporaryBlobPath } from '../../src/blobs/blob-store.js';
import { createLocalBlobStore } from '../../src/blobs/local.js';
import { PART_BYTES, createS3BlobStore, createS3Client } from '../../src/blobs/s3.js';
import type { S3Settings } from '../../src/config/config.js';
import { TesseraError } from '../../src/domain/errors.js';
import { S3_ACCESS_KEY_ID, S3_ENDPOINT, S3_REGION, S3_SECRET_ACCESS_KEY, newBucket as newTestBucket } from '../helpers/s3.js';

// One contract for Tessera's blob stores, run on the local folder and on a real S3-compatible
// server that checks signatures (OpenStack Swift with s3api, started by scripts/s3-server.sh;
// .ci/run starts it and sets TESSERA_TEST_S3_*). Without those variables the S3 run is skipped
// with a banner, unless REQUIRE_SERVICES=1, where it fails.

const ENDPOINT = S3_ENDPOINT;
const REQUIRED = process.env.REQUIRE_SERVICES === '1';
const s3Missing = ENDPOINT ? undefined : 'TESSERA_TEST_S3_ENDPOINT is not set (run scripts/s3-server.sh, or .ci/run)';
if (s3Missing && !REQUIRED) console.error(`\n*** The S3 blob store tests are SKIPPED: ${s3Missing}. REQUIRE_SERVICES=1 turns this into a failure. ***\n`);

function s3Settings(overrides: Partial<S3Settings> = {}): S3Settings {
  return { bucket: 'unset', endpoint: ENDPOINT, region: S3_REGION, accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: S3_SECRET_ACCESS_KEY, forcePathStyle: true, prefix: 'tessera/', ...overrides };
}

async function newBucket(): Promise<string> {
  return (await newTestBucket('tessera-test')).settings.bucket;
}

const STORES: { name: string; skip?: string; open: () => Promise<{ store: BlobStore; done: () => void }> }[] = [
  {
    name: 'local',
    async open() {
      const root = mkdtempSync(path.join(tmpdir(), 'tessera-blobs-'));
      return { store: createLocalBlobStore(root), done: () => rmSync(root, { recursive: true, force: true }) };
    },
  },
  {
    name: 's3',
    ...(s3Missing && !REQUIRED ? { skip: s3Missing } : {}),
    async open() {
      assert.ok(!s3Missing, `${s3Missing}, and REQUIRE_SERVICES=1 requires the S3 server`);
      return { store: createS3BlobStore(s3Settings({ bucket: await newBucket() })), done: () => {} };
    },
  },
];

async function text(store: BlobStore, key: string): Promise<string> {
  const { stream } = await store.openRead(key);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

for (const { name, skip, open } of STORES) {
  test(`blob store contract [${name}]`, { timeout: 120_000, ...(skip ? { skip } : {}) }, async () => {
    const { store, done } = await open();
    const scratch = mkdtempSync(path.join(tmpdir(), 'tessera-blob-files-'));
    try {
      const file = path.join(scratch, 'in.txt');
      writeFileSync(file, 'hello blobs');
      assert.deepEqual(await store.putFile('jobs/j1/a1/chunks/data_0.bin', file), { key: 'jobs/j1/a1/chunks/data_0.bin', size: 11 });
      assert.deepEqual(await store.stat('jobs/j1/a1/chunks/data_0.bin'), { key: 'jobs/j1/a1/chunks/data_0.bin', size: 11 });
      assert.equal(await text(store, 'jobs/j1/a1/chunks/data_0.bin'), 'hello blobs');
      // Replacing a blob replaces it whole.
      writeFileSync(file, 'second version');
      await store.putFile('jobs/j1/a1/chunks/data_0.bin', file);
      assert.equal(await text(store, 'jobs/j1/a1/chunks/data_0.bin'), 'second version');
      await store.getFile('jobs/j1/a1/chunks/data_0.bin', path.join(scratch, 'out', 'copy.bin'));
      assert.equal(readFileSync(path.join(scratch, 'out', 'copy.bin'), 'utf8'), 'second version');

      // A move stores the file and removes it; into a folder that does not exist yet, and over an existing blob.
      const moved = path.join(scratch, 'moved.txt');
      writeFileSync(moved, 'moved bytes');
      assert.deepEqual(await store.moveFile('jobs/j1/a1/results/0/a1/0-moved.txt', moved), { key: 'jobs/j1/a1/results/0/a1/0-moved.txt', size: 11 });
      assert.equal(existsSync(moved), false, 'the moved file is gone from the task folder');
      assert.equal(await text(store, 'jobs/j1/a1/results/0/a1/0-moved.txt'), 'moved bytes');
      writeFileSync(moved, 'replaced');
      await store.moveFile('jobs/j1/a1/results/0/a1/0-moved.txt', moved);
      assert.equal(await text(store, 'jobs/j1/a1/results/0/a1/0-moved.txt'), 'replaced');
      await assert.rejects(store.moveFile('jobs/j1/missing', path.join(scratch, 'missing.txt')), /ENOENT/);
      assert.equal(await store.stat('jobs/j1/missing'), null);

      // Streams: empty, small, and larger than one part (multipart on S3), byte for byte.
      assert.deepEqual(await store.putStream('jobs/j1/empty', Readable.from([]), 10), { key: 'jobs/j1/empty', size: 0 });
      assert.equal(await text(store, 'jobs/j1/empty'), '');
      const big = randomBytes(PART_BYTES * 2 + 12345);
      const pieces = Array.from({ length: Math.ceil(big.length / 65536) }, (_, index) => big.subarray(index * 65536, (index + 1) * 65536));
      assert.equal((await store.putStream('jobs/j1/big.bin', Readable.from(pieces), big.length)).size, big.length);
      await store.getFile('jobs/j1/big.bin', path.join(scratch, 'big.bin'));
      assert.ok(readFileSync(path.join(scratch, 'big.bin')).equals(big), 'a multipart blob comes back byte for byte');

      // Too large: refused, and nothing is left under the key.
      await assert.rejects(store.putStream('jobs/j1/too-big', Readable.from([Buffer.alloc(PART_BYTES + 10)]), PART_BYTES), (error: unknown) => error instanceof TesseraError && error.code === 'RESOURCE_EXHAUSTED');
      assert.equal(await store.stat('jobs/j1/too-big'), null);

      // Missing blobs and hostile keys.
      assert.equal(await store.stat('jobs/none'), null);
      await assert.rejects(store.openRead('jobs/none'), (error: unknown) => error instanceof TesseraError && error.code === 'NOT_FOUND');
      for (const bad of ['../etc/passwd', 'jobs/../../x', '/abs', 'a//b', 'sp ace']) {
        await assert.rejects(store.stat(bad), (error: unknown) => error instanceof TesseraError && error.code === 'INVALID_ARGUMENT', bad);
      }

      // deletePrefix takes a folder, never a sibling that merely starts the same way.
      writeFileSync(file, 'x');
      await store.putFile('jobs/j10/a1/r.txt', file);
      await store.deletePrefix('jobs/j1');
      assert.equal(await store.stat('jobs/j1/big.bin'), null);
      assert.equal(await store.stat('jobs/j1/a1/chunks/data_0.bin'), null);
      assert.deepEqual(await store.stat('jobs/j10/a1/r.txt'), { key: 'jobs/j10/a1/r.txt', size: 1 });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
      done();
    }
  });
}

test('local moveFile: a file with another link is copied, not linked into the store; another file system is copied', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'tessera-blobs-'));
  const scratch = mkdtempSync(path.join(tmpdir(), 'tessera-blob-files-'));
  // /dev/shm is a tmpfs on Linux, another file system than the temporary folder on most machines.
  const elsewhere = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/tessera-blob-files-') : undefined;
  try {
    const store = createLocalBlobStore(root);
    // An app that hard-links a file it can read into its results must not make the blob share
    // that file's bytes (a later change to the file would change the stored result).
    const original = path.join(scratch, 'original.txt');
    writeFileSync(original, 'original');
    const linked = path.join(scratch, 'linked.txt');
    linkSync(original, linked);
    await store.moveFile('jobs/j/results/0/a1/0-linked.txt', linked);
    assert.equal(existsSync(linked), false);
    const blobFile = path.join(root, 'jobs', 'j', 'results', '0', 'a1', '0-linked.txt');
    assert.notEqual(statSync(blobFile).ino, statSync(original).ino, 'the blob is a copy');
    writeFileSync(original, 'changed later');
    assert.equal(readFileSync(blobFile, 'utf8'), 'original');

    if (elsewhere && statSync(elsewhere).dev !== statSync(root).dev) {
      const far = path.join(elsewhere, 'far.txt');
      writeFileSync(far, 'from another file system');
      assert.deepEqual(await store.moveFile('jobs/j/results/1/a1/0-far.txt', far), { key: 'jobs/j/results/1/a1/0-far.txt', size: 24 });
      assert.equal(existsSync(far), false);
      assert.equal(readFileSync(path.join(root, 'jobs', 'j', 'results', '1', 'a1', '0-far.txt'), 'utf8'), 'from another file system');
    } else {
      console.error('*** no second file system here (/dev/shm): the copy across file systems is not exercised ***');
    }
  } finally {
    for (const dir of [root, scratch, elsewhere]) if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

test('S3: wrong credentials and a missing bucket give clear errors', { timeout: 60_000, ...(s3Missing && !REQUIRED ? { skip: s3Missing } : {}) }, async () => {
  assert.ok(!s3Missing, `${s3Missing}, and REQUIRE_SERVICES=1 requires the S3 server`);
  const bucket = await newBucket();
  const wrongSecret = createS3BlobStore(s3Settings({ bucket, secretAccessKey: 'not-the-secret' }));
  await assert.rejects(wrongSecret.stat('jobs/x'), (error: unknown) => {
    assert.ok(error instanceof TesseraError);
    assert.equal(error.code, 'PERMISSION_DENIED');
    assert.match(error.message, new RegExp(`bucket "${bucket}" at ${ENDPOINT!.replace(/[.]/g, '\\.')} refused the credentials`));
    assert.doesNotMatch(error.message, /not-the-secret/, 'the secret is never in a message');
    return true;
  });
  const missing = createS3BlobStore(s3Settings({ bucket: 'no-such-bucket-tessera' }));
  const scratch = mkdtempSync(path.join(tmpdir(), 'tessera-blob-files-'));
  try {
    writeFileSync(path.join(scratch, 'f'), 'x');
    await assert.rejects(missing.putFile('jobs/x', path.join(scratch, 'f')), (error: unknown) => {
      assert.ok(error instanceof TesseraError);
      assert.equal(error.code, 'FAILED_PRECONDITION');
      assert.match(error.message, /bucket "no-such-bucket-tessera" at .* does not exist/);
      return true;
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('local: the sweep removes temporary upload files a crash left, once old enough, and never a blob', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'tessera-blobs-sweep-'));
  try {
    const store = createLocalBlobStore(root);
    const scratch = mkdtempSync(path.join(tmpdir(), 'tessera-blob-files-'));
    writeFileSync(path.join(scratch, 'in.txt'), 'kept');
    // A valid key that looks like the old temporary names: a blob, whatever its age.
    const lookalike = `jobs/j1/results/0/a1/0-video.${randomUUID()}.part`;
    await store.putFile(lookalike, path.join(scratch, 'in.txt'));
    rmSync(scratch, { recursive: true, force: true });
    const folder = path.join(root, 'jobs', 'j1', 'results', '0', 'a1');
    const abandoned = temporaryBlobPath(path.join(folder, '1-out.bin'));
    const young = temporaryBlobPath(path.join(folder, '2-out.bin'));
    writeFileSync(abandoned, 'half an upload');
    writeFileSync(young, 'an upload under way');
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    utimesSync(abandoned, twoDaysAgo, twoDaysAgo);
    utimesSync(path.join(root, ...lookalike.split('/')), twoDaysAgo, twoDaysAgo);

    assert.equal(await store.sweepAbandonedUploads(ABANDONED_UPLOAD_MS), 1);
    assert.equal(existsSync(abandoned), false, 'the abandoned temporary file is gone');
    assert.equal(existsSync(young), true, 'an upload younger than the threshold is left alone');
    assert.equal(await text(store, lookalike), 'kept', 'a blob is never taken for a temporary file');
    assert.equal(await store.sweepAbandonedUploads(ABANDONED_UPLOAD_MS), 0, 'a second sweep finds nothing');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('S3: the sweep aborts unfinished multipart uploads under the prefix, once old enough', { timeout: 60_000, ...(s3Missing && !REQUIRED ? { skip: s3Missing } : {}) }, async () => {
  assert.ok(!s3Missing, `${s3Missing}, and REQUIRE_SERVICES=1 requires the S3 server`);
  const settings = s3Settings({ bucket: await newBucket() });
  const store = createS3BlobStore(settings);
  const client = createS3Client(settings);
  // What a server killed during a large upload leaves: an upload begun, a part sent, never completed.
  const begin = async (key: string) => {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: settings.bucket, Key: key }));
    await client.send(new UploadPartCommand({ Bucket: settings.bucket, Key: key, UploadId, PartNumber: 1, Body: Buffer.from('half') }));
    return UploadId!;
  };
  const ours = await begin('tessera/jobs/j1/output/a1/0-big.bin');
  const archive = await begin('tessera/components/abc.tgz');
  const outside = await begin('someone-else/big.bin');
  const unprefixed = await begin('jobs/j2/output/a1/0-big.bin');
  const unfinished = async () => ((await client.send(new ListMultipartUploadsCommand({ Bucket: settings.bucket }))).Uploads ?? []).map((upload) => upload.UploadId).sort();
  try {
    assert.deepEqual(await unfinished(), [ours, archive, outside, unprefixed].sort());
    assert.equal(await store.sweepAbandonedUploads(ABANDONED_UPLOAD_MS), 0, 'an upload begun a moment ago may still be under way');
    // A threshold of zero stands in for a day passing.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal(await store.sweepAbandonedUploads(0), 2);
    assert.deepEqual(await unfinished(), [outside, unprefixed].sort(), 'only the uploads under Tessera\'s prefix are aborted');
    assert.equal(await store.sweepAbandonedUploads(0), 0, 'a second sweep finds nothing');
    // A store without a prefix shares the bucket's root: it sweeps its own folders only.
    assert.equal(await createS3BlobStore({ ...settings, prefix: '' }).sweepAbandonedUploads(0), 1);
    assert.deepEqual(await unfinished(), [outside], 'someone else\'s upload is never aborted');
  } finally {
    await client.send(new AbortMultipartUploadCommand({ Bucket: settings.bucket, Key: 'someone-else/big.bin', UploadId: outside })).catch(() => {});
    client.destroy();
  }
});
