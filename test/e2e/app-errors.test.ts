import assert from 'node:assert/strict';
import test from 'node:test';
import { installComponents, installTemplate, runToEnd } from '../helpers/components.js';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera } from '../helpers/tessera.js';

// What an app's author sees when it fails (issue 30): a traceback of their own files, and retries
// spaced by the back-off rather than three attempts in 40 ms.

const RAISING_APP = `def parse(chunk):
    raise ValueError("cannot parse chunk %d" % chunk)


parse(0)
`;

// Prints when each attempt started, by its own clock, then fails.
const FLAKY_APP = `import sys, time
print("attempt started at %.3f" % time.time())
sys.exit(1)
`;

async function logLines(call: (method: string, route: string) => Promise<{ body: any }>, jobId: string): Promise<string[]> {
  const { body } = await call('GET', `/v1/customer/jobs/${jobId}/logs?after=0&limit=10000`);
  return body.logs.map((line: { log: string }) => line.log);
}

forEachEngine('a python traceback names the app\'s own files and no platform frames', async (db, engine) => {
  for (const sandbox of [true, false]) {
    await test(`sandbox ${sandbox ? 'on' : 'off'}`, async () => {
      const tessera = await startTestTessera(db, { sandbox, workerSlots: 1 });
      try {
        await installComponents(tessera, [{ name: `raises-${sandbox}`, type: 'app', entrypoint: 'main.py', code: RAISING_APP }]);
        await installTemplate(tessera, { id: `raises-${sandbox}`, description: '', app: `raises-${sandbox}`, partitioner: 'passthrough', assembler: 'passthrough', config: { maxTaskRetries: 0 } });
        const job = await runToEnd(tessera, { templateId: `raises-${sandbox}`, dataSource: { dataSourceDescriptor: 'bypass' } });
        assert.equal(job.state, 'JOB_STATE_FAILED');
        const text = (await logLines(tessera.call, job.id)).join('\n');
        assert.match(text, /Traceback \(most recent call last\):\n {2}File "app\/main\.py", line 5, in <module>\n {4}parse\(0\)\n {2}File "app\/main\.py", line 2, in parse\n {4}raise ValueError/, `${engine}: ${text}`);
        assert.match(text, /ValueError: cannot parse chunk 0/);
        assert.doesNotMatch(text, /launcher\.py|\/component\/|components?\/[0-9a-f]{16,}/, 'no launcher frame, no component or cache path');
        assert.match(job.errorMessage, /File "app\/main\.py", line 2, in parse/);
      } finally {
        await tessera.stop();
      }
    });
  }
}, { timeout: 240_000 });

forEachEngine('a failed task is retried after a growing back-off, not at once', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 1, retryBackoff: { baseSeconds: 1, maxSeconds: 30 } });
  try {
    await installComponents(tessera, [{ name: 'flaky', type: 'app', entrypoint: 'main.py', code: FLAKY_APP }]);
    await installTemplate(tessera, { id: 'flaky', description: '', app: 'flaky', partitioner: 'passthrough', assembler: 'passthrough', config: { maxTaskRetries: 2 } });
    const job = await runToEnd(tessera, { templateId: 'flaky', dataSource: { dataSourceDescriptor: 'bypass' } });
    assert.equal(job.state, 'JOB_STATE_FAILED');
    assert.match(job.errorMessage, /chunk 0 failed after 3 attempts/);
    const starts = (await logLines(tessera.call, job.id)).map((line) => /attempt started at ([\d.]+)/.exec(line)?.[1]).filter(Boolean).map(Number);
    assert.equal(starts.length, 3, `three attempts: ${starts.join(', ')}`);
    // 1 s, then 2 s, each −20% at worst (jitter); the attempt's own run time only adds to the gap.
    const gaps = starts.slice(1).map((start, index) => start - starts[index]!);
    assert.ok(gaps[0]! >= 0.8 && gaps[1]! >= 1.6, `attempts spaced by the back-off: ${gaps.map((gap) => gap.toFixed(2)).join(' s, ')} s`);
    const events = await tessera.call('GET', `/v1/customer/jobs/${job.id}/events`);
    assert.match(String(events.body), /failed \(attempt 1 of 3\), retrying in (0\.[89]|1\.[0-2]) s/);
  } finally {
    await tessera.stop();
  }
}, { timeout: 120_000 });
