import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createTokenIssuer } from '../../src/engine/access-tokens.js';
import { forEachEngine } from '../helpers/db.js';
import { checkResponse } from '../helpers/responses.js';
import { startTestTessera } from '../helpers/tessera.js';

// The HTTP surface around the seed operations: pagination at its edges, access tokens, CORS,
// content types and size limits.

forEachEngine('GET /jobs pagination is right at every edge', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    const page = async (query: string) => {
      const answer = await tessera.call('GET', `/v1/customer/jobs${query}`);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      checkResponse('get', '/v1/customer/jobs', answer);
      return { ids: answer.body.data.map((job: { id: string }) => job.id), pagination: answer.body.pagination };
    };
    assert.deepEqual(await page(''), { ids: [], pagination: { total: 0, offset: 0, hasPrevious: false, hasNext: false } });
    const ids: string[] = [];
    for (let index = 0; index < 5; index++) ids.push((await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', name: `job ${index}` })).body.job.id);
    assert.deepEqual(await page('?orderBy=name'), { ids, pagination: { total: 5, offset: 0, hasPrevious: false, hasNext: false } });
    assert.deepEqual(await page('?orderBy=name&pagination.limit=2'), { ids: ids.slice(0, 2), pagination: { total: 5, offset: 0, hasPrevious: false, hasNext: true } });
    assert.deepEqual(await page('?orderBy=name&pagination.limit=2&pagination.offset=2'), { ids: ids.slice(2, 4), pagination: { total: 5, offset: 2, hasPrevious: true, hasNext: true } });
    assert.deepEqual(await page('?orderBy=name&pagination.limit=2&pagination.offset=4'), { ids: ids.slice(4), pagination: { total: 5, offset: 4, hasPrevious: true, hasNext: false } });
    assert.deepEqual(await page('?orderBy=name&pagination.limit=2&pagination.offset=9'), { ids: [], pagination: { total: 5, offset: 9, hasPrevious: true, hasNext: false } });
    assert.deepEqual((await page('?orderBy=name%20desc&pagination.limit=1')).ids, [ids[4]]);
    for (const [query, mentions] of [
      ['?pagination.limit=0', /pagination\.limit "0" must be from 1 to 1000/],
      ['?pagination.limit=1001', /pagination\.limit "1001" must be from 1 to 1000/],
      ['?pagination.offset=-1', /pagination\.offset/],
      ['?pagination.limit=1.5', /pagination\.limit "1\.5" must be an integer/],
      ['?orderBy=colour', /cannot order jobs by "colour"[\s\S]*createdAt, startAt, submittedAt, startedAt, endedAt, name, state, priority/],
    ] as [string, RegExp][]) {
      const answer = await tessera.call('GET', `/v1/customer/jobs${query}`);
      assert.equal(answer.status, 400, query);
      assert.match(answer.body.message, mentions);
    }
    const filtered = await tessera.call('POST', '/v1/customer/jobs/filter', { pagination: { limit: 2, offset: '1' }, orderBy: 'name', filters: [{ field: 'name', condition: 'FILTER_CONDITION_LIKE', value: 'job %' }] });
    assert.deepEqual(filtered.body.pagination, { total: 5, offset: 1, hasPrevious: true, hasNext: true });
    assert.deepEqual(filtered.body.data.map((job: { id: string }) => job.id), ids.slice(1, 3));
    const mismatch = await tessera.call('POST', '/v1/customer/jobs/filter', { filters: [{ field: 'createdAt', condition: 'FILTER_CONDITION_GT', value: 'last week' }] });
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.body.message, /createdAt with FILTER_CONDITION_GT needs an RFC 3339 date-time[\s\S]*"last week"/);
  } finally {
    await tessera.stop();
  }
});

forEachEngine('access tokens work wherever keys do, until they expire', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    const issued = await tessera.call('POST', '/v1/auth/access_token', { apiKey: tessera.apiKey }, null);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    checkResponse('post', '/v1/auth/access_token', issued);
    assert.equal(issued.body.expiresIn, '3600');
    const token: string = issued.body.token;
    const created = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count' }, token);
    assert.equal(created.status, 200);
    assert.equal((await tessera.call('GET', `/v1/customer/jobs/${created.body.job.id}`)).status, 200, 'the key sees what the token made');
    const otherToken = (await tessera.call('POST', '/v1/auth/access_token', { apiKey: tessera.otherApiKey }, null)).body.token;
    assert.equal((await tessera.call('GET', `/v1/customer/jobs/${created.body.job.id}`, undefined, otherToken)).status, 404);

    const [payload, signature] = token.slice(4).split('.');
    const forged = `tst_${Buffer.from(JSON.stringify({ a: 'someone', s: 'customer', e: 4102444800 })).toString('base64url')}.${signature}`;
    const tampered = `tst_${payload}.${signature!.slice(0, -2)}AA`;
    const secret = (await db.query<{ value: string }>(`SELECT value FROM settings WHERE key = 'access_token_key'`))[0]!.value;
    const expired = createTokenIssuer(secret).issue('x', 'customer', 'key-x', Date.now() - 2 * 3600 * 1000).token;
    // Signed right, but naming no key (as tokens of earlier releases did): refused.
    const keyless = (() => {
      const body = Buffer.from(JSON.stringify({ a: 'x', s: 'customer', e: 4102444800 })).toString('base64url');
      return `tst_${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
    })();
    for (const [bad, mentions] of [[forged, /invalid signature/], [tampered, /invalid signature/], [expired, /expired at/], ['tst_garbage', /malformed/], [keyless, /malformed/]] as [string, RegExp][]) {
      const answer = await tessera.call('GET', '/v1/customer/jobs', undefined, bad);
      assert.equal(answer.status, 401, bad);
      assert.equal(answer.body.code, 16);
      assert.match(answer.body.message, mentions);
    }
    for (const body of [{ apiKey: 'tsk_wrong' }, { apiKey: token }]) assert.equal((await tessera.call('POST', '/v1/auth/access_token', body, null)).status, 401);
    assert.equal((await tessera.call('POST', '/v1/auth/access_token', {}, null)).status, 400);
  } finally {
    await tessera.stop();
  }
});

forEachEngine('CORS for configured origins; JSON only, with clear 415/406/413 answers', async (db) => {
  const tessera = await startTestTessera(db, { corsOrigins: ['https://app.example.com'] });
  try {
    const preflight = await fetch(`${tessera.url}/v1/customer/jobs`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /PATCH/);
    const refused = await fetch(`${tessera.url}/v1/customer/jobs`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    const actual = await fetch(`${tessera.url}/v1/customer/jobs`, { headers: { origin: 'https://app.example.com', authorization: tessera.apiKey } });
    assert.equal(actual.status, 200);
    assert.equal(actual.headers.get('access-control-allow-origin'), 'https://app.example.com');

    const protobuf = await fetch(`${tessera.url}/v1/customer/jobs`, { method: 'POST', headers: { authorization: tessera.apiKey, 'content-type': 'application/x-protobuf' }, body: Buffer.from([8, 1]) });
    assert.equal(protobuf.status, 415);
    const protobufBody = (await protobuf.json()) as any;
    assert.equal(protobufBody.code, 3);
    assert.match(protobufBody.message, /x-protobuf request bodies are not supported/);
    const form = await fetch(`${tessera.url}/v1/customer/jobs`, { method: 'POST', headers: { authorization: tessera.apiKey, 'content-type': 'application/x-www-form-urlencoded' }, body: 'templateId=word-count' });
    assert.equal(form.status, 415);
    const accept = await fetch(`${tessera.url}/v1/customer/jobs`, { headers: { authorization: tessera.apiKey, accept: 'application/x-protobuf' } });
    assert.equal(accept.status, 406);
    assert.equal(((await accept.json()) as any).code, 3);
    const huge = await tessera.call('POST', '/v1/customer/jobs', { templateId: 'word-count', description: 'x'.repeat(2 * 1024 * 1024) });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.code, 8);
    checkResponse('post', '/v1/customer/jobs', huge);
    assert.equal((await fetch(`${tessera.url}/healthz`)).status, 200, 'still answering');
  } finally {
    await tessera.stop();
  }
});
