import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config/config.js';
import { openDb } from '../../src/store/db.js';
import { forEachEngine, forPostgres } from '../helpers/db.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// What operators watch: /metrics moving with real work, /healthz and /readyz (which fails while
// the database is cut off and recovers after), and logs that never hold a key, token or secret.

/** The value of one sample in Prometheus text format (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.startsWith(`${name}{`) ? line.slice(name.length + 1, line.indexOf('}')) : '';
    if (wanted.every((label) => labelText.split(',').includes(label))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

async function finished(tessera: Awaited<ReturnType<typeof startTestTessera>>, jobId: string, key = tessera.apiKey) {
  return waitFor(`job ${jobId} to end`, async () => {
    const job = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`, undefined, key)).body.job;
    return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(job.state) ? job : undefined;
  });
}

forEachEngine('/metrics counts the tasks, jobs, lease waits, durations and requests of a real job', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    const scrape = async () => {
      const response = await fetch(`${tessera.url}/metrics`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
      return response.text();
    };
    const before = await scrape();
    assert.equal(sample(before, 'tessera_tasks_completed_total', { kind: 'app' }), 0);
    const jobId = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', params: { partitioner: { chunks: 3 } } })).body.job.id;
    await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`);
    const job = await finished(tessera, jobId);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    const chunks = job.numChunks as number;
    const after = await waitFor('the assembler to be counted', async () => {
      const text = await scrape();
      return sample(text, 'tessera_tasks_completed_total', { kind: 'assemble' }) === 1 ? text : undefined;
    }, 10_000);
    assert.equal(sample(after, 'tessera_tasks_completed_total', { kind: 'app' }), chunks);
    assert.equal(sample(after, 'tessera_tasks_completed_total', { kind: 'partition' }), 1);
    assert.equal(sample(after, 'tessera_tasks_leased_total', { kind: 'app' }), chunks);
    assert.equal(sample(after, 'tessera_task_lease_wait_seconds_count', { kind: 'app' }), chunks);
    assert.equal(sample(after, 'tessera_task_duration_seconds_count', { kind: 'app' }), chunks);
    assert.ok(sample(after, 'tessera_task_duration_seconds_sum', { kind: 'app' }) > 0);
    assert.equal(sample(after, 'tessera_jobs', { state: 'JOB_STATE_COMPLETE' }), 1);
    assert.equal(sample(after, 'tessera_queue_depth'), 0);
    assert.ok(sample(after, 'tessera_workers_connected') >= 1, 'the in-process slots count as a worker');
    assert.ok(sample(after, 'tessera_http_request_duration_seconds_count', { method: 'POST', route: '/v1/customer/jobs', status: '200' }) >= 1);
    assert.ok(sample(after, 'tessera_http_request_duration_seconds_count', { method: 'GET', route: '/v1/customer/jobs/:jobId', status: '200' }) >= 1);
    assert.equal(sample(after, 'tessera_tasks_failed_total', { kind: 'app' }), 0);
    assert.match(after, /process_resident_memory_bytes \d+/, 'process metrics too');

    const health = await fetch(`${tessera.url}/healthz`);
    assert.deepEqual([health.status, await health.json()], [200, { ok: true }]);
    const ready = await fetch(`${tessera.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { database: string }).database, 'reachable');
  } finally {
    await tessera.stop();
  }
});

forEachEngine('with TESSERA_METRICS_TOKEN set, /metrics answers only its bearer, and a wrong token gets a clear 401', async (db) => {
  const token = 'metrics-token-0123456789abcdef';
  const logs: string[] = [];
  const tessera = await startTestTessera(db, { metricsToken: token }, { logs });
  try {
    const scrape = (authorization?: string) => fetch(`${tessera.url}/metrics`, authorization === undefined ? {} : { headers: { authorization } });
    for (const [authorization, message] of [
      [undefined, '/metrics needs the metrics token'],
      ['Bearer', 'the metrics token is wrong'],
      ['', '/metrics needs the metrics token'],
      ['Bearer metrics-token-0123456789abcdeX', 'the metrics token is wrong'],
      ['Bearer metrics-token', 'the metrics token is wrong'],
      [`Bearer ${tessera.apiKey}`, 'the metrics token is wrong'],
    ] as const) {
      const refused = await scrape(authorization);
      assert.equal(refused.status, 401, String(authorization));
      const body = (await refused.json()) as { code: number; message: string; details: unknown[] };
      assert.equal(body.code, 16, 'rpcStatus UNAUTHENTICATED');
      assert.ok(body.message.includes(message), body.message);
      assert.ok(JSON.stringify(body).includes('TESSERA_METRICS_TOKEN'), 'the answer says which token');
    }
    for (const authorization of [`Bearer ${token}`, token, `bearer   ${token}`]) {
      const scraped = await scrape(authorization);
      assert.equal(scraped.status, 200, authorization);
      assert.match(await scraped.text(), /tessera_queue_depth \d+/);
    }
    assert.equal((await fetch(`${tessera.url}/healthz`)).status, 200, 'health checks need no token');
    assert.ok(!logs.some((line) => line.includes('metrics-token')), 'the token is never logged');
  } finally {
    await tessera.stop();
  }
  // Too short to be a secret: refused at start, without echoing it whole.
  assert.throws(() => loadConfig({}, { TESSERA_METRICS_TOKEN: 'short-but-wrong' }), (error: Error) => /TESSERA_METRICS_TOKEN/.test(error.message) && !error.message.includes('short-but-wrong'));
  assert.equal(loadConfig({}, {}).metricsToken, undefined, 'unset: /metrics is open (the test above)');
});

forPostgres('/readyz fails while the database is cut off, and recovers when it is back', async (_db, databaseUrl, schema) => {
  // Tessera reaches PostgreSQL through a TCP relay the test can cut: the damage is done for real.
  const target = new URL(databaseUrl);
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => (client.destroy(), upstream.destroy());
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const port = (relay.address() as AddressInfo).port;
  const relayed = new URL(databaseUrl);
  relayed.host = `127.0.0.1:${port}`;
  const db = await openDb({ databaseUrl: relayed.toString(), schema, poolSize: 4 });
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  const ready = async () => {
    const response = await fetch(`${tessera.url}/readyz`);
    return { status: response.status, body: (await response.json()) as { ok: boolean; database: string; reason?: string } };
  };
  try {
    assert.equal((await ready()).status, 200);
    // close() waits for open connections, so they are cut first: the database is gone mid-conversation.
    const closed = new Promise<void>((resolve) => relay.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
    const down = await waitFor('/readyz to fail', async () => {
      const answer = await ready();
      return answer.status === 503 ? answer : undefined;
    }, 15_000);
    assert.deepEqual([down.body.ok, down.body.database], [false, 'unreachable']);
    assert.ok(down.body.reason && !down.body.reason.includes('postgres://'), `a reason without the URL: ${down.body.reason}`);
    assert.equal((await fetch(`${tessera.url}/healthz`)).status, 200, 'the process itself is alive');
    await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
    await waitFor('/readyz to recover', async () => (await ready()).status === 200, 15_000);
  } finally {
    await tessera.stop();
    await db.close();
    for (const socket of sockets) socket.destroy();
    relay.close();
  }
}, { timeout: 120_000 });

forEachEngine('no key, token, signature or secret ever appears in the logs', async (db) => {
  const logs: string[] = [];
  const tessera = await startTestTessera(db, {}, { logs });
  const secretPassword = 'pw-Zq81vXk2-secret';
  const secretQuery = 'qt-Hh77Lp30-secret';
  // A source that answers the query-token URL, and refuses everything else.
  const source = http.createServer((request, response) => {
    if (request.url?.includes(secretQuery)) response.end('the quick brown fox jumps over the lazy dog\n'.repeat(50));
    else response.writeHead(403).end('no');
  });
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  const port = (source.address() as AddressInfo).port;
  try {
    const token = (await tessera.call('POST', '/v1/auth/access_token', { apiKey: tessera.apiKey }, null)).body.token as string;
    assert.ok(token);
    const run = async (url: string, key: string) => {
      const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', dataSource: { dataSourceDescriptor: 'url', params: { url } } }, key);
      assert.equal(created.status, 200, JSON.stringify(created.body));
      await tessera.call('POST', `/v1/customer/jobs/${created.body.job.id}/run`, undefined, key);
      return finished(tessera, created.body.job.id, key);
    };
    const good = await run(`http://127.0.0.1:${port}/input.txt?token=${secretQuery}`, tessera.apiKey);
    assert.equal(good.state, 'JOB_STATE_COMPLETE', good.errorMessage);
    const refused = await run(`http://reader:${secretPassword}@127.0.0.1:${port}/private.txt`, token);
    assert.equal(refused.state, 'JOB_STATE_FAILED');
    // Bad credentials are logged as failures, never echoed.
    await tessera.call('GET', '/v1/customer/jobs', undefined, `${tessera.apiKey}x`);
    const results = (await tessera.call('GET', `/v1/customer/jobs/${good.id}/results`)).body.results as { link: string }[];
    const signature = new URL(results[0]!.link).searchParams.get('signature')!;
    assert.equal((await fetch(results[0]!.link)).status, 200);
    await tessera.stop();

    const all = logs.join('');
    assert.ok(logs.length > 20, `the server logged (${logs.length} lines)`);
    assert.match(all, /"reqId"/, 'lines carry the request id');
    assert.match(all, new RegExp(`"jobId":"${good.id}"`), 'and job ids');
    assert.match(all, /"taskId":\d+/, 'and task ids');
    for (const [what, secret] of [['API key', tessera.apiKey], ['access token', token], ['URL password', secretPassword], ['URL query token', secretQuery], ['link signature', signature]] as const) {
      assert.ok(!all.includes(secret), `the ${what} appears in the logs: ${logs.find((line) => line.includes(secret))}`);
    }
  } finally {
    source.close();
    await tessera.stop().catch(() => {});
  }
});
