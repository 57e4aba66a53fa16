import assert from 'node:assert/strict';
import { createKey } from '../../src/engine/accounts.js';
import { silentLog } from '../../src/domain/log.js';
import { createHttpLink } from '../../src/worker/http-link.js';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera, testWorker, waitFor } from '../helpers/tessera.js';

// POST /v1/worker/logs over real HTTP: lines under the caller's current lease are stored and
// readable at once; a lease no longer current is answered as refused; another worker's lease is
// a 403; every malformed body is a 400 naming the field, the value and what to send.

forEachEngine('the live-log endpoint stores a worker\'s lines under its own current leases only', async (db, _engine, t) => {
  const tessera = await startTestTessera(db, { workerSlots: 0 });
  try {
    const [tokenA, tokenB] = [(await createKey(db, { scope: 'worker' })).apiKey, (await createKey(db, { scope: 'worker' })).apiKey];
    const [workerA, workerB] = [testWorker('logs-a'), testWorker('logs-b')];
    const linkA = createHttpLink({ servers: [tessera.url], token: tokenA, worker: workerA, log: silentLog });
    await linkA.register();
    await createHttpLink({ servers: [tessera.url], token: tokenB, worker: workerB, log: silentLog }).register();
    const jobId = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'noop', params: { partitioner: { chunks: 1 } } })).body.job.id as string;
    assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
    const [lease] = await waitFor('A to lease the partition', async () => {
      const leases = await linkA.lease(1, 1000);
      return leases.length > 0 ? leases : undefined;
    });
    const line = { at: new Date().toISOString(), stream: 'stderr', level: 'INFO', line: 'INFO:root:partitioning' };
    const post = async (body: unknown, token = tokenA, workerId = workerA.id) => {
      const response = await fetch(`${tessera.url}/v1/worker/logs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-tessera-worker': workerId }, body: typeof body === 'string' ? body : JSON.stringify(body) });
      return { status: response.status, body: (await response.json()) as any };
    };
    const own = { taskId: lease!.taskId, leaseToken: lease!.leaseToken };

    await t.test('lines under a current lease are stored and readable', async () => {
      const stored = await post({ leases: [{ ...own, lines: [line, { ...line, line: 'second' }] }] });
      assert.deepEqual(stored, { status: 200, body: { refused: [] } });
      const page = await tessera.call('GET', `/v1/customer/jobs/${jobId}/logs`);
      assert.deepEqual(page.body.logs.map((entry: { log: string; level: string; service: string }) => [entry.service, entry.level, entry.log]), [
        ['PARTITIONER', 'INFO', 'INFO:root:partitioning'],
        ['PARTITIONER', 'INFO', 'second'],
      ]);
    });

    await t.test('another worker\'s lease is refused with 403, and nothing is stored', async () => {
      const foreign = await post({ leases: [{ ...own, lines: [line] }] }, tokenB, workerB.id);
      assert.equal(foreign.status, 403);
      assert.match(foreign.body.message, new RegExp(`the lease on task ${own.taskId} was not given to worker "${workerB.id}"`));
      assert.equal((await tessera.call('GET', `/v1/customer/jobs/${jobId}/logs`)).body.logs.length, 2);
    });

    await t.test('every malformed body is a 400 that says what to send', async () => {
      const cases: [string, unknown, RegExp][] = [
        ['not an object', '[1]', /the body must be a JSON object/],
        ['no leases', {}, /leases undefined must be a list of \{taskId, leaseToken, lines\}/],
        ['a lease not an object', { leases: [7] }, /leases\[0\] 7 must be a JSON object/],
        ['a bad task id', { leases: [{ taskId: 'x', leaseToken: own.leaseToken, lines: [] }] }, /leases\[0\]\.taskId "x" must be a number from 1/],
        ['a fractional task id', { leases: [{ taskId: 1.5, leaseToken: own.leaseToken, lines: [] }] }, /leases\[0\]\.taskId 1\.5 must be a whole number/],
        ['no lease token', { leases: [{ taskId: own.taskId, lines: [] }] }, /leases\[0\]\.leaseToken undefined must be a string/],
        ['lines not a list', { leases: [{ ...own, lines: 'hello' }] }, /leases\[0\]\.lines must be a list of at most 1000 lines/],
        ['a bad level', { leases: [{ ...own, lines: [{ ...line, level: 'LOUD' }] }] }, /leases\[0\]\.lines\[0\]\.level "LOUD" must be one of UNKNOWN, TRACE/],
        ['a bad time', { leases: [{ ...own, lines: [{ ...line, at: 'yesterday' }] }] }, /leases\[0\]\.lines\[0\]\.at "yesterday" is not a date-time \(send an RFC 3339 time/],
        ['a bad stream', { leases: [{ ...own, lines: [{ ...line, stream: 'stdin' }] }] }, /leases\[0\]\.lines\[0\]\.stream "stdin" must be "stdout" or "stderr"/],
        ['a line too long', { leases: [{ ...own, lines: [{ ...line, line: 'x'.repeat(8193) }] }] }, /leases\[0\]\.lines\[0\]\.line .* must be a string of at most 8192 characters/],
        ['a task named twice', { leases: [{ ...own, lines: [] }, { ...own, lines: [] }] }, new RegExp(`task ${own.taskId} is named twice \\(send each task's lines in one entry\\)`)],
        ['too many lines', { leases: [{ ...own, lines: Array.from({ length: 1001 }, () => line) }] }, /at most 1000 lines .*\(send 1001 lines in 2 calls\)/],
      ];
      for (const [what, body, pattern] of cases) {
        const answer = await post(body);
        assert.equal(answer.status, 400, `${what}: ${JSON.stringify(answer.body)}`);
        assert.match(answer.body.message, pattern, what);
      }
      assert.equal((await tessera.call('GET', `/v1/customer/jobs/${jobId}/logs`)).body.logs.length, 2);
    });

    await t.test('a lease no longer current is answered as refused and adds nothing', async () => {
      await linkA.release([lease!]);
      assert.deepEqual(await post({ leases: [{ ...own, lines: [line] }] }), { status: 200, body: { refused: [own.taskId] } });
      assert.equal((await tessera.call('GET', `/v1/customer/jobs/${jobId}/logs`)).body.logs.length, 2);
    });
  } finally {
    await tessera.stop();
  }
});
