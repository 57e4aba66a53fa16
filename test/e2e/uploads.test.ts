import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileNameFromDisposition } from '../../src/engine/uploads.js';
import { installCopyTemplate } from '../helpers/components.js';
import { apiCaller, startProcess, stopProcess } from '../helpers/cluster.js';
import { withFreshDb } from '../helpers/db.js';
import { patternStreams, put } from '../helpers/streams.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// The file data source: the job answers an upload link, the client PUTs the bytes (whole or in
// parts), says uploadcompleted, runs the job. Every step out of order is refused with a reason;
// and a 1 GiB file goes in and comes back out through a real server process whose memory stays
// bounded (its peak RSS is printed and checked).


test('the upload flow: link, parts, uploadcompleted, run; every step out of order refused; a bucket source chains its result', { timeout: 120_000 }, async () => {
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db, { maxSourceBytes: 4096 });
    try {
      const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'file', params: { tempUrl: 'https://evil.example/ignored' } } });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      const jobId = created.body.job.id;
      const tempUrl: string = created.body.job.dataSource.params.tempUrl;
      assert.match(tempUrl, new RegExp(`^${tessera.url}/v1/uploads/${jobId}\\?expires=\\d+&signature=`), 'the server gives its own link, not the client\'s');
      // The job shows a link of its own too (signed afresh: its expiry may be a second later).
      const shown: string = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job.dataSource.params.tempUrl;
      const expiry = (link: string) => Number(new URL(link).searchParams.get('expires'));
      assert.equal(shown.split('?')[0], tempUrl.split('?')[0]);
      assert.ok(expiry(shown) - expiry(tempUrl) >= 0 && expiry(shown) - expiry(tempUrl) <= 2, `${shown} against ${tempUrl}`);

      const early = await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`);
      assert.equal(early.status, 400);
      assert.match(early.body.message, /upload is not complete/);
      assert.match((await tessera.call('PATCH', `/v1/customer/jobs/${jobId}/uploadcompleted`)).body.message, /nothing was uploaded/);

      assert.equal((await put(tempUrl.replace(/signature=[^&]+/, 'signature=forged'), 'x')).status, 403, 'a forged link is refused');
      assert.equal((await put(`${tempUrl}&part=0`, 'x')).status, 400, 'part 0 is refused');
      const tooBig = await put(tempUrl, 'y'.repeat(5000));
      assert.equal(tooBig.status, 429, JSON.stringify(tooBig.body));
      assert.match(tooBig.body.message, /larger than the limit of 4096 bytes/);

      const second = await put(`${tempUrl}&part=2`, 'blue green\n'.repeat(10));
      assert.deepEqual(second.body, { part: 2, size: 110, uploadedBytes: 110 });
      const gap = await tessera.call('PATCH', `/v1/customer/jobs/${jobId}/uploadcompleted`);
      assert.equal(gap.status, 400);
      assert.match(gap.body.message, /part 1 of the upload .* is missing \(parts received: 2\)/);
      await put(`${tempUrl}&part=1`, 'wrong words\n', { 'content-disposition': 'attachment; filename="../../etc/colours.txt"' });
      // Sent again, a part replaces the earlier one.
      const first = await put(`${tempUrl}&part=1`, 'red green\n'.repeat(20), { 'content-disposition': 'attachment; filename="../../etc/colours.txt"' });
      assert.deepEqual(first.body, { part: 1, size: 200, uploadedBytes: 310 });

      assert.equal((await tessera.call('PATCH', `/v1/customer/jobs/${jobId}/uploadcompleted`, undefined, tessera.otherApiKey)).status, 404, "another account's job is not found");
      const done = await tessera.call('PATCH', `/v1/customer/jobs/${jobId}/uploadcompleted`);
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.match(done.body.message, /2 parts, 310 bytes/);
      assert.match((await tessera.call('POST', `/v1/customer/jobs/uploadcompleted/${jobId}`)).body.message, /already complete/, 'the older path works too');
      const late = await put(`${tempUrl}&part=3`, 'late');
      assert.equal(late.status, 400);
      assert.match(late.body.message, /does not take an upload now/);
      assert.equal((await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job.dataSource.params.tempUrl, undefined, 'no link once complete');

      assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
      const job = await waitFor('the job to end', async () => {
        const current = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
        return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(current.state) ? current : undefined;
      });
      assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
      const { results } = (await tessera.call('GET', `/v1/customer/jobs/${jobId}/results`)).body;
      assert.deepEqual(await (await fetch(results[0].link)).json(), { red: 20, green: 30, blue: 10 }, 'both parts, in order, were the input');

      // Chained: a bucket source reads that job's result from temporary storage.
      const chained = { dataSourceDescriptor: 'bucket', params: { jobId } };
      const checked = await tessera.call('POST', '/v1/customer/datasource/test', { dataSource: chained, listFiles: true });
      assert.equal(checked.status, 200, JSON.stringify(checked.body));
      assert.equal(checked.body.filename, results[0].name);
      assert.equal((await tessera.call('POST', '/v1/customer/datasource/test', { dataSource: chained }, tessera.otherApiKey)).status, 400, "another account's job is not a source");
      const wrongName = await tessera.call('POST', '/v1/customer/datasource/test', { dataSource: { dataSourceDescriptor: 'bucket', params: { jobId, name: 'nope.txt' } } });
      assert.match(wrongName.body.message, /has no result "nope.txt"/);
      const next = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: chained })).body.job;
      assert.equal((await tessera.call('POST', `/v1/customer/jobs/${next.id}/run`)).status, 200);
      const chainedJob = await waitFor('the chained job to end', async () => {
        const current = (await tessera.call('GET', `/v1/customer/jobs/${next.id}`)).body.job;
        return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(current.state) ? current : undefined;
      });
      assert.equal(chainedJob.state, 'JOB_STATE_COMPLETE', chainedJob.errorMessage);
      const stolen = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: chained }, tessera.otherApiKey)).body.job;
      const refused = await tessera.call('POST', `/v1/customer/jobs/${stolen.id}/run`, undefined, tessera.otherApiKey);
      assert.equal(refused.status, 400);
      assert.match(refused.body.message, /was not found/);

      const urlJob = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url: 'https://example.com/a.txt' } } });
      assert.match((await tessera.call('PATCH', `/v1/customer/jobs/${urlJob.body.job.id}/uploadcompleted`)).body.message, /not "file"; there is no upload/);
    } finally {
      await tessera.stop();
    }
  });
});

test('upload file names are plain names, never paths', () => {
  assert.equal(fileNameFromDisposition('attachment; filename="../../etc/passwd"'), 'passwd');
  assert.equal(fileNameFromDisposition("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20final.pdf"), 'r_sum__final.pdf');
  assert.equal(fileNameFromDisposition('attachment; filename="..\\\\..\\\\win.ini"'), 'win.ini');
  assert.equal(fileNameFromDisposition('attachment; filename=".hidden"'), 'hidden');
  assert.equal(fileNameFromDisposition(undefined), 'input');
});

const GIB = 1024 ** 3;

/** VmRSS (now) or VmHWM (peak since start, or since the peak was reset through clear_refs) of a process, in bytes. */
function rss(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) * 1024;
}

test('a 1 GiB file streams in (4 parts) and out through a real server with bounded memory', { timeout: 600_000 }, async () => {
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-gib-'));
  const key = 'tsk_upload_test_key_0123456789';
  const server = await startProcess(['up', '--port', '0', '--home', home, '--json', '--slots', '1'], { HOME: home, TESSERA_API_KEY: key, TESSERA_LOG_LEVEL: 'warn' });
  const child = server.child;
  try {
    const api = apiCaller(server.info.url, key);
    // What goes in must come out, byte for byte.
    await installCopyTemplate(api);
    const created = await api.call('POST', '/v1/customer/jobs', { templateId: 'copy', dataSource: { dataSourceDescriptor: 'file', params: {} } });
    const jobId = created.body.job.id;
    const tempUrl = created.body.job.dataSource.params.tempUrl;
    // The peak is measured from here: what start-up took (PGlite's first initdb) is not the transfer's.
    const startupPeak = rss(child.pid!, 'VmHWM');
    writeFileSync(`/proc/${child.pid}/clear_refs`, '5');
    const before = rss(child.pid!, 'VmRSS');
    const { streams, sha256 } = patternStreams(4, GIB / 4);
    for (const [index, stream] of streams.entries()) {
      const answer = await put(`${tempUrl}&part=${index + 1}`, stream, { 'content-disposition': 'attachment; filename="big.bin"' });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
    }
    const expected = sha256();
    assert.equal((await api.call('PATCH', `/v1/customer/jobs/${jobId}/uploadcompleted`)).status, 200);
    assert.equal((await api.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
    const job = await waitFor('the 1 GiB job to end', async () => {
      const current = (await api.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
      return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(current.state) ? current : undefined;
    }, 500_000);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    const { results } = (await api.call('GET', `/v1/customer/jobs/${jobId}/results`)).body;
    const download = await fetch(results[0].link);
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of download.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      size += chunk.length;
    }
    assert.equal(size, GIB);
    assert.equal(hash.digest('hex'), expected, 'the bytes came back unchanged');
    const peak = rss(child.pid!, 'VmHWM');
    const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
    console.log(`1 GiB upload (4 parts), job and download: server peak RSS ${mib(peak)} (RSS ${mib(before)} before the transfer; start-up peak ${mib(startupPeak)})`);
    assert.ok(peak - before < 256 * 1024 ** 2, `the server's memory stays bounded while 1 GiB passes through: peak ${mib(peak)}, ${mib(before)} before`);
  } finally {
    await stopProcess(server);
    rmSync(home, { recursive: true, force: true });
  }
});

test('temporary storage is deleted after the retention period: results and uploads', { timeout: 120_000 }, async () => {
  await withFreshDb('pglite', async (db) => {
    const tessera = await startTestTessera(db);
    try {
      const runUploaded = async (text: string, run: boolean) => {
        const created = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'file' } })).body.job;
        await put(created.dataSource.params.tempUrl, text);
        await tessera.call('PATCH', `/v1/customer/jobs/${created.id}/uploadcompleted`);
        if (run) await tessera.call('POST', `/v1/customer/jobs/${created.id}/run`);
        return created.id as string;
      };
      const ran = await runUploaded('old news\n', true);
      const waiting = await runUploaded('never run\n', false);
      const recent = await runUploaded('fresh news\n', true);
      for (const jobId of [ran, recent]) {
        await waitFor('the job to complete', async () => (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job.state === 'JOB_STATE_COMPLETE');
      }
      const oldLink = (await tessera.call('GET', `/v1/customer/jobs/${ran}/results`)).body.results[0].link;
      assert.equal((await fetch(oldLink)).status, 200);
      // Two of them are made older than the 48 h retention; the sweep deletes their storage only.
      await db.query("UPDATE jobs SET ended_at = now() - interval '49 hours' WHERE id = $1", [ran]);
      await db.query("UPDATE jobs SET created_at = now() - interval '49 hours' WHERE id = $1", [waiting]);
      tessera.engine.deliveries.retentionDue();
      await tessera.engine.deliveries.runOnce();

      const gone = await tessera.call('GET', `/v1/customer/jobs/${ran}/results`);
      assert.equal(gone.status, 400);
      assert.match(gone.body.message, /were deleted on .*48 h after it ended/);
      assert.equal((await fetch(oldLink)).status, 404, 'the file itself is gone');
      const stale = await tessera.call('POST', `/v1/customer/jobs/${waiting}/run`);
      assert.equal(stale.status, 400);
      assert.match(stale.body.message, /upload of job .* was deleted on/);
      const kept = (await tessera.call('GET', `/v1/customer/jobs/${recent}/results`)).body.results;
      assert.equal((await fetch(kept[0].link)).status, 200, 'a recent job keeps its results');
    } finally {
      await tessera.stop();
    }
  });
});
