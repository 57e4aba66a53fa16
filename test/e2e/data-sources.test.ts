import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { apiCaller, startProcess, stopProcess } from '../helpers/cluster.js';
import { installCopyTemplate } from '../helpers/components.js';
import { patternStreams, put } from '../helpers/streams.js';
import { withFreshDb } from '../helpers/db.js';
import { checkResponse } from '../helpers/responses.js';
import { S3_ACCESS_KEY_ID, S3_ENDPOINT, S3_REGION, S3_SECRET_ACCESS_KEY, newBucket, s3Available } from '../helpers/s3.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';
import type { TestTessera } from '../helpers/tessera.js';

// The customer's own S3-compatible bucket as source and destination, on a real S3 server that
// checks signatures (Swift's s3api): credentials in an account secret (sealed, never shown),
// datasource/test, a word-count job reading from the bucket and delivering into a folder of it,
// and the clear errors of wrong credentials, a missing bucket, a missing secret and a private
// endpoint the operator did not allow.

const S3 = 'type.googleapis.com/bytenite.data_source.S3DataSource';

function bucketSource(bucketName: string, name: string, secretId = 'swift', descriptor = 'aws') {
  return { dataSourceDescriptor: descriptor, params: { '@type': S3, bucketName, name, cloudRegion: S3_REGION, secret_id: secretId, endpoint: S3_ENDPOINT } };
}

async function saveSecret(tessera: TestTessera, id: string, accessKey: string, secretKey: string) {
  const saved = await tessera.call('POST', '/v1/auth/secrets', { secret: { id, name: 'test server', secretType: 's3', accessKey }, secretKey });
  assert.equal(saved.status, 200, JSON.stringify(saved.body));
  return saved.body.secret;
}

async function finished(tessera: TestTessera, jobId: string) {
  return waitFor(`job ${jobId} to end`, async () => {
    const job = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
    return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(job.state) ? job : undefined;
  });
}

test('a job reads from a customer bucket and delivers into a folder of it; secrets stay sealed', { timeout: 120_000 }, async () => {
  if (!s3Available('S3 data source test')) return;
  await withFreshDb('pglite', async (db) => {
    const logs: string[] = [];
    const tessera = await startTestTessera(db, {}, { logs });
    const { settings, client } = await newBucket('tessera-src');
    try {
      await client.send(new PutObjectCommand({ Bucket: settings.bucket, Key: 'in/colours.txt', Body: 'red green blue red green red\n'.repeat(100) }));
      await client.send(new PutObjectCommand({ Bucket: settings.bucket, Key: 'in/other.txt', Body: 'x' }));

      const view = await saveSecret(tessera, 'swift', S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY);
      assert.equal(view.secretType, 'aws', 's3 is the older name of aws');
      const listed = await tessera.call('GET', '/v1/auth/secrets');
      assert.deepEqual(listed.body.secrets.map((secret: { id: string }) => secret.id), ['swift']);
      assert.ok(!JSON.stringify(listed.body).includes(S3_SECRET_ACCESS_KEY), 'the secret key is never returned');
      assert.deepEqual((await tessera.call('GET', '/v1/auth/secrets', undefined, tessera.otherApiKey)).body.secrets, [], 'another account sees none');
      const [row] = await db.query<{ sealed_key: string }>('SELECT sealed_key FROM secrets');
      assert.ok(row && !row.sealed_key.includes(S3_SECRET_ACCESS_KEY) && !row.sealed_key.includes(Buffer.from(S3_SECRET_ACCESS_KEY).toString('base64')), 'stored sealed');

      const checked = await tessera.call('POST', '/v1/customer/datasource/test', { dataSource: bucketSource(settings.bucket, 'in/'), listFiles: true });
      assert.equal(checked.status, 200, JSON.stringify(checked.body));
      // ByteNite's directory model: the folder listed, its files (with Tessera's size), no subfolders here.
      checkResponse('post', '/v1/customer/datasource/test', checked);
      assert.equal(checked.body.files.path, 'in');
      assert.deepEqual(checked.body.files.directories, []);
      assert.deepEqual(checked.body.files.files.map((file: { path: string; size: string }) => `${file.path}:${file.size}`).sort(), ['in/colours.txt:2900', 'in/other.txt:1']);
      assert.equal((await (await fetch(checked.body.tempUrl)).text()).length > 0, true, 'tempUrl reads the first file');

      const created = await tessera.call('POST', '/v1/customer/jobs', {
        templateId: 'word-count',
        dataSource: bucketSource(settings.bucket, 'in/colours.txt'),
        dataDestination: bucketSource(settings.bucket, 'out/run-1'),
        params: { partitioner: { chunks: 3 } },
      });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      const jobId = created.body.job.id;
      assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
      const job = await finished(tessera, jobId);
      assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
      assert.ok(job.stateTimestamps.JOB_STATE_DOWNLOADING <= job.stateTimestamps.JOB_STATE_COMPLETE, 'delivered while DOWNLOADING');
      const { results } = (await tessera.call('GET', `/v1/customer/jobs/${jobId}/results`)).body;
      assert.equal(results.length, 1);
      assert.match(results[0].link, new RegExp(`^s3://${settings.bucket}/out/run-1/`));
      const key = results[0].link.replace(`s3://${settings.bucket}/`, '');
      const object = await client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: key }));
      assert.deepEqual(JSON.parse(await object.Body!.transformToString()), { red: 300, green: 200, blue: 100 });
      assert.ok(!logs.join('\n').includes(S3_SECRET_ACCESS_KEY), 'the secret key never reaches the logs');

      assert.equal((await tessera.call('DELETE', '/v1/auth/secrets/aws/swift', undefined, tessera.otherApiKey)).status, 404, "another account cannot delete it");
      assert.equal((await tessera.call('DELETE', '/v1/auth/secrets/s3/swift')).status, 200);
      assert.deepEqual((await tessera.call('GET', '/v1/auth/secrets')).body.secrets, []);
    } finally {
      await tessera.stop();
    }
  });
});

test('bucket sources and destinations fail clearly: wrong keys, missing bucket, missing secret, private endpoint', { timeout: 120_000 }, async () => {
  if (!s3Available('S3 data source errors test')) return;
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db);
    const { settings, client } = await newBucket('tessera-err');
    try {
      await client.send(new PutObjectCommand({ Bucket: settings.bucket, Key: 'in.txt', Body: 'a b c\n' }));
      await saveSecret(tessera, 'good', S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY);
      await saveSecret(tessera, 'wrong', S3_ACCESS_KEY_ID, 'not-the-secret');

      // gcp and storj speak the same protocol (their default endpoints are Google's and Storj's
      // gateways); with an endpoint they reach any S3-compatible server, each with its own secret type.
      for (const descriptor of ['gcp', 'storj']) {
        assert.equal((await tessera.call('POST', '/v1/auth/secrets', { secret: { id: 'good', secretType: descriptor, accessKey: S3_ACCESS_KEY_ID }, secretKey: S3_SECRET_ACCESS_KEY })).status, 200);
        const listed = await tessera.call('POST', '/v1/customer/datasource/test', { dataSource: bucketSource(settings.bucket, 'in.txt', 'good', descriptor) });
        assert.equal(listed.status, 200, JSON.stringify(listed.body));
        assert.deepEqual([listed.body.filename, listed.body.size], ['in.txt', '6']);
      }
      const crossed = await tessera.call('POST', '/v1/customer/datasource/test', { dataSource: bucketSource(settings.bucket, 'in.txt', 'wrong', 'gcp') });
      assert.match(crossed.body.message, /no gcp secret "wrong"/, 'a secret is looked up under its own type');

      const wrong = await tessera.call('POST', '/v1/customer/datasource/test', { dataSource: bucketSource(settings.bucket, 'in.txt', 'wrong') });
      assert.equal(wrong.status, 403, JSON.stringify(wrong.body));
      assert.match(wrong.body.message, /refused the credentials/);

      const missingBucket = await tessera.call('POST', '/v1/customer/datasource/test', { dataSource: bucketSource(`${settings.bucket}-nope`, 'in.txt', 'good') });
      assert.equal(missingBucket.status, 400, JSON.stringify(missingBucket.body));
      assert.match(missingBucket.body.message, /does not exist/);

      const missingObject = await tessera.call('POST', '/v1/customer/datasource/test', { dataSource: bucketSource(settings.bucket, 'nothing.txt', 'good') });
      assert.equal(missingObject.status, 400);
      assert.match(missingObject.body.message, /nothing\.txt does not exist/);

      const noSecret = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: bucketSource(settings.bucket, 'in.txt', 'unknown') });
      assert.equal(noSecret.status, 200, 'a job may name a secret saved later');
      const refused = await tessera.call('POST', `/v1/customer/jobs/${noSecret.body.job.id}/run`);
      assert.equal(refused.status, 400);
      assert.match(refused.body.message, /no aws secret "unknown"/);

      const unknown = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'ftp', params: {} } });
      assert.equal(unknown.status, 400);
      assert.match(unknown.body.message, /unsupported data source "ftp"/);
      assert.match(JSON.stringify(unknown.body.details), /bypass, url, file, bucket, aws, s3, gcp, storj/);

      // Output to a bucket with refused credentials: the job runs, then fails saying why.
      const badDelivery = await tessera.call('POST', '/v1/customer/jobs', {
        templateId: 'word-count',
        dataSource: bucketSource(settings.bucket, 'in.txt', 'good'),
        dataDestination: bucketSource(settings.bucket, 'out', 'wrong'),
      });
      await tessera.call('POST', `/v1/customer/jobs/${badDelivery.body.job.id}/run`);
      const failed = await finished(tessera, badDelivery.body.job.id);
      assert.equal(failed.state, 'JOB_STATE_FAILED');
      assert.match(failed.errorMessage, /delivering the output to s3:\/\/.*\/out failed: .*refused the credentials/);
    } finally {
      await tessera.stop();
    }
  });
  // Without the operator's permission, an endpoint on a private address is refused.
  await withFreshDb('pglite', async (db) => {
    const strict = await startTestTessera(db, { allowPrivateUrls: false });
    try {
      const saved = await strict.call('POST', '/v1/auth/secrets', { secret: { id: 'good', secretType: 'aws', accessKey: S3_ACCESS_KEY_ID }, secretKey: S3_SECRET_ACCESS_KEY });
      assert.equal(saved.status, 200);
      const privateEndpoint = await strict.call('POST', '/v1/customer/datasource/test', { dataSource: bucketSource('any-bucket', 'in.txt', 'good') });
      assert.equal(privateEndpoint.status, 403, JSON.stringify(privateEndpoint.body));
      assert.match(privateEndpoint.body.message, /the aws endpoint points at "127\.0\.0\.1".*private or loopback/);
    } finally {
      await strict.stop();
    }
  });
});

// A server killed with SIGKILL in the middle of delivering 300 MiB to a customer's bucket: its
// claim on the delivery runs out, the restarted server delivers again, and the object in the
// bucket is whole (the same bytes that were uploaded), never a part.
test('a server killed mid-delivery: the delivery is taken over and the object arrives whole', { timeout: 300_000 }, async () => {
  if (!s3Available('S3 delivery kill test')) return;
  const { settings, client } = await newBucket('tessera-kill');
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-delivery-'));
  const key = 'tsk_delivery_kill_test_0123456789';
  const env = { HOME: home, TESSERA_API_KEY: key, TESSERA_LOG_LEVEL: 'warn', TESSERA_ALLOW_PRIVATE_URLS: '1', TESSERA_LEASE_SECONDS: '3' };
  const start = () => startProcess(['up', '--port', '0', '--home', home, '--json', '--slots', '1'], env);
  let server = await start();
  try {
    let api = apiCaller(server.info.url, key);
    await installCopyTemplate(api);
    assert.equal((await api.call('POST', '/v1/auth/secrets', { secret: { id: 'swift', secretType: 'aws', accessKey: S3_ACCESS_KEY_ID }, secretKey: S3_SECRET_ACCESS_KEY })).status, 200);
    const created = (await api.call('POST', '/v1/customer/jobs', { templateId: 'copy', dataSource: { dataSourceDescriptor: 'file' }, dataDestination: bucketSource(settings.bucket, 'delivered') })).body.job;
    const { streams, sha256 } = patternStreams(1, 300 * 1024 ** 2);
    assert.equal((await put(created.dataSource.params.tempUrl, streams[0]!)).status, 200);
    const expected = sha256();
    await api.call('PATCH', `/v1/customer/jobs/${created.id}/uploadcompleted`);
    await api.call('POST', `/v1/customer/jobs/${created.id}/run`);
    await waitFor('the delivery to start', async () => (await api.call('GET', `/v1/customer/jobs/${created.id}`)).body.job.state === 'JOB_STATE_DOWNLOADING', 120_000);
    // Some parts are in the bucket, the object is not complete yet.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await stopProcess(server, 'SIGKILL');
    const listed = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket, Prefix: 'delivered/' }));
    assert.deepEqual(listed.Contents ?? [], [], 'nothing half-written is visible in the bucket');

    server = await start();
    api = apiCaller(server.info.url, key);
    const job = await waitFor('the job to end after the restart', async () => {
      const current = (await api.call('GET', `/v1/customer/jobs/${created.id}`)).body.job;
      return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(current.state) ? current : undefined;
    }, 120_000);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    const object = await client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: 'delivered/copy.bin' }));
    const hash = createHash('sha256');
    for await (const chunk of object.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
    assert.equal(hash.digest('hex'), expected, 'the delivered object is the uploaded bytes, whole');
  } finally {
    await stopProcess(server);
    rmSync(home, { recursive: true, force: true });
  }
});
