import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLinkSigner } from '../../src/blobs/signed-links.js';
import { TesseraError } from '../../src/domain/errors.js';
import { parseManifest, parseTag } from '../../src/domain/manifest.js';
import { downloadName, taskFileKey, uniqueResultNames } from '../../src/engine/result-names.js';
import { BLOB_KEY_ROOTS, checkBlobKey } from '../../src/blobs/blob-store.js';
import { archiveKey } from '../../src/engine/catalog.js';

// Pure pieces of the engine contract: manifests as ByteNite wrote them, tags, result names,
// blob keys and signed links.

test('manifests are read with keys in any case, snake or camel', () => {
  const manifest = parseManifest(
    { Name: 'img', VERSION: '2.3', Type: 'partitioner', Entrypoint: 'main.py', platform_config: { container: 'x' }, DeviceRequirements: { min_cpu: 2, minMemory: 4, GPU: ['a100'] } },
    'manifest.json',
  );
  assert.equal(manifest.name, 'img');
  assert.equal(manifest.version, '2.3');
  assert.equal(manifest.kind, 'partitioner');
  assert.deepEqual(manifest.platformConfig, { container: 'x' });
  assert.deepEqual(manifest.deviceRequirements, { minCpu: 2, minMemory: 4, gpu: ['a100'] });
  assert.equal(parseManifest({ name: 'a', entrypoint: 'x.js', type: 'app' }, 'm').kind, 'app');
  for (const bad of [{ name: 'a b', entrypoint: 'x' }, { name: 'a', entrypoint: '' }, { name: 'a', entrypoint: 'x', version: '1' }, []]) {
    assert.throws(() => parseManifest(bad, 'bad.json'), (error: unknown) => error instanceof TesseraError && error.code === 'INVALID_ARGUMENT' && error.message.startsWith('bad.json'));
  }
});

test('tags name a component, a major version or an exact version', () => {
  assert.deepEqual(parseTag('word-count'), { name: 'word-count' });
  assert.deepEqual(parseTag('word-count@2'), { name: 'word-count', major: 2 });
  assert.deepEqual(parseTag('word-count@2.1'), { name: 'word-count', major: 2, minor: 1 });
  assert.throws(() => parseTag('../etc@1'), /not "name"/);
});

test('result names stay when unique and get the chunk number when not', () => {
  const names = uniqueResultNames([
    { chunkIndex: 0, outputs: [{ name: 'out.png', blobKey: 'k0', size: 1 }, { name: 'log.txt', blobKey: 'k0l', size: 1 }] },
    { chunkIndex: 1, outputs: [{ name: 'out.png', blobKey: 'k1', size: 1 }, { name: 'deep/x.txt', blobKey: 'k1x', size: 1 }] },
    { chunkIndex: 2, outputs: [{ name: '1_out.png', blobKey: 'k2', size: 1 }] },
  ]);
  // chunk 2 wrote "1_out.png" itself, which chunk 1's renamed file already took: a counter keeps both.
  assert.deepEqual(names.map((file) => file.name), ['0_out.png', 'log.txt', '1_out.png', 'deep_x.txt', '2_2_1_out.png']);
  assert.deepEqual(names.map((file) => file.blobKey), ['k0', 'k0l', 'k1', 'k1x', 'k2']);
});

test('task file keys never carry a raw file name and are scoped by attempt', () => {
  const key = taskFileKey({ jobId: 'J', kind: 'app', chunkIndex: 3, attempt: 2 }, 0, '../../etc/pass wd');
  assert.equal(key, 'jobs/J/results/3/a2/0-pass_wd');
  assert.equal(checkBlobKey(key), key);
  assert.equal(downloadName(key), 'pass_wd');
  assert.equal(taskFileKey({ jobId: 'J', kind: 'assemble', chunkIndex: 0, attempt: 1 }, 4, '.hidden'), 'jobs/J/output/a1/4-hidden');
  for (const bad of ['../x', 'a/../b', '/abs', 'a//b', 'a/./b', 'a\\b']) assert.throws(() => checkBlobKey(bad), /plain relative path/);
});

test('every kind of key Tessera writes is under one of the roots the blob sweep looks in', () => {
  const keys = [
    ...(['partition', 'app', 'assemble'] as const).map((kind) => taskFileKey({ jobId: 'J', kind, chunkIndex: 0, attempt: 1 }, 0, 'x.bin')),
    archiveKey('ab'.repeat(32)),
  ];
  for (const key of keys) assert.ok(BLOB_KEY_ROOTS.some((root) => key.startsWith(root)), `${key} is under none of ${BLOB_KEY_ROOTS.join(', ')}`);
});

test('signed links verify, and refuse tampering and expiry', () => {
  const signer = createLinkSigner('secret');
  const now = Date.UTC(2026, 0, 1);
  const { expires, signature } = signer.sign('jobs/J/output/a1/0-x', 60, now);
  signer.verify('jobs/J/output/a1/0-x', String(expires), signature, now);
  assert.throws(() => signer.verify('jobs/J/output/a1/0-y', String(expires), signature, now), /invalid signature/);
  assert.throws(() => signer.verify('jobs/J/output/a1/0-x', String(expires + 1), signature, now), /invalid signature/);
  assert.throws(() => signer.verify('jobs/J/output/a1/0-x', String(expires), signature, now + 61_000), /expired/);
  assert.throws(() => createLinkSigner('other').verify('jobs/J/output/a1/0-x', String(expires), signature, now), /invalid signature/);
  assert.throws(() => signer.verify('k', undefined, undefined, now), /missing/);
});
