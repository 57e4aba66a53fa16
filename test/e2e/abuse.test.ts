import assert from 'node:assert/strict';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera } from '../helpers/tessera.js';

// Abuse of the API from one address: wrong keys are slowed, then answered 429 with Retry-After
// (a client with a good key behind the same address keeps working), and a body nested 20,000
// levels deep is a clear 400, not a stack overflow.

forEachEngine('300 wrong keys from one address are slowed and then refused with 429 and Retry-After; a known key still works', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  try {
    assert.equal((await tessera.call('GET', '/v1/customer/jobs')).status, 200, 'the good key is used before the flood');
    const answers: { status: number; retryAfter: string | null }[] = [];
    let next = 0;
    // Thirty at a time, as a guesser would: each refusal past the tenth is held back.
    await Promise.all(Array.from({ length: 30 }, async () => {
      while (next < 300) {
        const guess = next++;
        const response = await fetch(`${tessera.url}/v1/customer/jobs`, { headers: { authorization: `Bearer tsk_guess${String(guess).padStart(40, '0')}` } });
        await response.arrayBuffer();
        answers.push({ status: response.status, retryAfter: response.headers.get('retry-after') });
      }
    }));
    const count = (status: number) => answers.filter((answer) => answer.status === status).length;
    assert.equal(count(401) + count(429), 300, JSON.stringify([...new Set(answers.map((answer) => answer.status))]));
    assert.ok(count(401) >= 50 && count(401) <= 80, `${count(401)} answered 401 before the address was refused`);
    assert.ok(answers.filter((answer) => answer.status === 429).every((answer) => Number(answer.retryAfter) >= 1 && Number(answer.retryAfter) <= 60), 'every 429 says when to come back');

    const refused = await tessera.call('GET', '/v1/customer/jobs', undefined, 'tsk_another_guess_0000000000000000000000');
    assert.equal(refused.status, 429);
    assert.equal(refused.body.code, 8);
    assert.match(refused.body.message, /too many failed authentications from 127\.0\.0\.1/);
    const exchange = await tessera.call('POST', '/v1/auth/access_token', { apiKey: 'tsk_another_guess_0000000000000000000000' }, null);
    assert.equal(exchange.status, 429, 'the token exchange is throttled too');
    const worker = await fetch(`${tessera.url}/v1/worker/heartbeat`, { method: 'POST', headers: { authorization: 'Bearer tsk_worker_guess', 'content-type': 'application/json' }, body: '{}' });
    assert.equal(worker.status, 429, 'and the worker API');
    // The account's own key, known to this server, is not held up by the guesser beside it.
    assert.equal((await tessera.call('GET', '/v1/customer/jobs')).status, 200);
  } finally {
    await tessera.stop();
  }
}, { timeout: 120_000 });

forEachEngine('a job body nested 20,000 levels deep is a clear 400', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  try {
    const deep = '{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000);
    for (const route of ['/v1/customer/jobs', '/v1/auth/keys']) {
      const answer = await tessera.call('POST', route, `RAW:{"templateId":"word-count","params":${deep}}`);
      assert.equal(answer.status, 400, `${route}: ${JSON.stringify(answer.body).slice(0, 300)}`);
      assert.match(answer.body.message, /the request body nests objects and arrays more than 64 levels deep/);
    }
    // Sixty levels are only unusual: the job is made.
    const nested = '{"a":'.repeat(60) + '1' + '}'.repeat(60);
    const made = await tessera.call('POST', '/v1/customer/jobs', `RAW:{"templateId":"word-count","params":{"app":${nested}}}`);
    assert.equal(made.status, 200, JSON.stringify(made.body).slice(0, 300));
  } finally {
    await tessera.stop();
  }
});
