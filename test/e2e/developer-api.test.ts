import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { JOB_STATES } from '../../src/domain/job-state.js';
import { installComponents, installTemplate } from '../helpers/components.js';
import { forEachEngine } from '../helpers/db.js';
import { checkResponse } from '../helpers/responses.js';
import { appEntries, tarArchive } from '../helpers/tar.js';
import type { TestTessera } from '../helpers/tessera.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// The developer API and the job views it brings: hostile archives refused, logs as the app wrote
// them, server-sent events of every state in order, and resource accounting of real CPU burnt.

const CHATTY_APP = `
import os, sys
chunk = os.environ["CHUNK_NUMBER"]
print(f"reading chunk {chunk}")
print(f"WARNING: chunk {chunk} looks short", file=sys.stderr)
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "out.txt"), "w").write(chunk)
`;

// About 0.3 s of CPU per chunk, then 40 MB held for a moment.
// Run as python runs a script (its own __main__ and __file__); chunk 0 also waits for a process of
// its own, whose CPU and memory count too.
const BURN_APP = `
import os, subprocess, sys, time
assert __name__ == "__main__" and os.path.basename(__file__) == "main.py", (__name__, __file__)
if os.environ["CHUNK_NUMBER"] == "0":
    subprocess.run([sys.executable, "-c", "import time\\nb = bytearray(90 * 1024 * 1024)\\nfor i in range(0, len(b), 4096): b[i] = 1\\ns = time.process_time()\\nwhile time.process_time() - s < 0.3: pass"], check=True)
start = time.process_time()
n = 0
while time.process_time() - start < 0.3:
    n += 1
block = bytearray(40 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "n.txt"), "w").write(str(n))
`;

const SIX_CHUNKS = 'import os\nfor i in range(4):\n    open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i}.bin"), "w").write(str(i))\n';

interface Sse {
  events: { id?: string; event: string; data: any }[];
  /** Resolves when the server ends the stream (or close() hangs up). */
  done: Promise<void>;
  status: number;
  close(): void;
}

/** Opens a server-sent event stream and collects its events until the server ends it. */
async function openEvents(tessera: TestTessera, route: string, key = tessera.apiKey): Promise<Sse> {
  const controller = new AbortController();
  const response = await fetch(`${tessera.url}${route}`, { headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' }, signal: controller.signal });
  const events: Sse['events'] = [];
  if (!response.ok) return { events, done: Promise.resolve(), status: response.status, close: () => controller.abort() };
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const done = (async () => {
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += Buffer.from(chunk).toString('utf8');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(block.split('\n').filter((line) => !line.startsWith(':')).map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]));
        if (!fields.data) continue;
        const parsed = JSON.parse(fields.data);
        assert.equal(parsed.result.event, fields.event, 'data carries {result: {event, data}}');
        events.push({ ...(fields.id ? { id: fields.id } : {}), event: fields.event, data: parsed.result.data });
      }
    }
  })().catch((error: Error) => {
    // Hanging up ourselves is how a stream that never ends (the account's) is left.
    if (!controller.signal.aborted) throw error;
  });
  return { events, done, status: response.status, close: () => controller.abort() };
}

async function runJob(tessera: TestTessera, templateId: string): Promise<string> {
  const jobId = (await tessera.call('POST', '/v1/customer/jobs', { templateId, dataSource: { dataSourceDescriptor: 'bypass' } })).body.job.id;
  assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
  return jobId;
}

async function ended(tessera: TestTessera, jobId: string) {
  return waitFor(`job ${jobId} to end`, async () => {
    const job = (await tessera.call('GET', `/v1/customer/jobs/${jobId}`)).body.job;
    return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(job.state) ? job : undefined;
  });
}

forEachEngine('hostile archives are refused with the entry named, and nothing is registered', async (db) => {
  const tessera = await startTestTessera(db, { maxUnpackedBytes: 64 * 1024 * 1024, maxArchiveBytes: 8 * 1024 * 1024 });
  try {
    const push = (archive: Buffer | string) => tessera.call('POST', '/v1/dev/apps', { data: typeof archive === 'string' ? archive : archive.toString('base64') });
    const cases: [string, Buffer | string, RegExp][] = [
      ['traversal', tarArchive([...appEntries('evil1'), { name: '../evil.sh', data: 'rm -rf ~' }]), /"\.\.\/evil\.sh"/],
      ['nested traversal', tarArchive([...appEntries('evil2'), { name: 'app/../../evil.sh', data: 'x' }]), /"app\/\.\.\/\.\.\/evil\.sh"/],
      ['absolute path', tarArchive([...appEntries('evil3'), { name: '/etc/cron.d/evil', data: 'x' }]), /"\/etc\/cron\.d\/evil"/],
      ['escaping symlink', tarArchive([...appEntries('evil4'), { name: 'app/lib', type: '2', linkname: '../../../etc' }]), /"app\/lib"/],
      ['absolute symlink', tarArchive([...appEntries('evil5'), { name: 'app/passwd', type: '2', linkname: '/etc/passwd' }]), /"app\/passwd"/],
      ['hard link out', tarArchive([...appEntries('evil6'), { name: 'app/shadow', type: '1', linkname: '/etc/shadow' }]), /"app\/shadow"/],
      ['device', tarArchive([...appEntries('evil7'), { name: 'app/tty', type: '3' }]), /"app\/tty"/],
      ['10 GB when unpacked (header)', tarArchive([...appEntries('evil8'), { name: 'app/huge.bin', declaredSize: 10 * 1000 ** 3, data: Buffer.alloc(4096) }], { gzip: true }), /"app\/huge\.bin"/],
      ['gzip bomb', gzipSync(tarArchive([...appEntries('evil9'), { name: 'app/zeros.bin', data: Buffer.alloc(200 * 1024 * 1024) }]), { level: 9 }), /unpacks to more than the 67108864 bytes allowed/],
    ];
    for (const [what, archive, names] of cases) {
      const answer = await push(archive);
      assert.equal(answer.status, 400, `${what}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, 3, what);
      assert.match(answer.body.message, names, `${what}: the message names the entry: ${answer.body.message}`);
    }
    const badInputs: [string, unknown, RegExp][] = [
      ['not base64', '%%%', /base64/],
      ['no manifest', tarArchive([{ name: 'app/main.py', data: 'x' }]).toString('base64'), /no manifest\.json/],
      ['entrypoint missing', tarArchive([{ name: 'manifest.json', data: JSON.stringify({ name: 'lost', version: '1.0', entrypoint: 'main.py' }) }]).toString('base64'), /entrypoint "main\.py" is not a file in app\//],
      ['an engine pushed as an app', tarArchive([{ name: 'manifest.json', data: JSON.stringify({ name: 'eng', type: 'partitioner', entrypoint: 'main.py' }) }, { name: 'app/main.py', data: '' }]).toString('base64'), /describes a partitioner[\s\S]*tessera engine push/],
    ];
    for (const [what, data, message] of badInputs) {
      const answer = await tessera.call('POST', '/v1/dev/apps', { data });
      assert.equal(answer.status, 400, what);
      assert.match(answer.body.message, message, `${what}: ${answer.body.message}`);
    }
    const tooBig = await push(Buffer.alloc(8 * 1024 * 1024 + 3, 7));
    assert.equal(tooBig.status, 429, 'an archive over TESSERA_MAX_ARCHIVE_BYTES');
    assert.match(tooBig.body.message, /the archive is 8388611 bytes; at most 8388608 may be pushed/);
    const wayTooBig = await push(Buffer.alloc(9 * 1024 * 1024, 7));
    assert.equal(wayTooBig.status, 413, 'a body past the route\'s limit is cut off before it is read whole');
    assert.match(wayTooBig.body.message, /too large/);
    const apps = (await tessera.call('GET', '/v1/dev/apps')).body.data;
    assert.ok(apps.every((app: { builtin: boolean }) => app.builtin), `nothing of the hostile pushes was registered: ${apps.map((app: { name: string }) => app.name)}`);

    // A good archive made by hand (plain tar, with a top-level folder) is taken.
    const good = tarArchive(appEntries('fine').map((entry) => ({ ...entry, name: `fine/${entry.name}` })));
    const accepted = await push(good);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    checkResponse('post', '/v1/dev/apps', accepted);
    assert.equal(accepted.body.data.name, 'fine');
  } finally {
    await tessera.stop();
  }
}, { timeout: 180_000 });

forEachEngine('logs come back as the app wrote them; events deliver every state in order, and progress', async (db) => {
  const tessera = await startTestTessera(db);
  try {
    await installComponents(tessera, [
      { name: 'chatty', type: 'app', entrypoint: 'main.py', code: CHATTY_APP },
      { name: 'four', type: 'partitioner', entrypoint: 'main.py', code: `print("splitting")\n${SIX_CHUNKS}` },
      { name: 'broken', type: 'app', entrypoint: 'main.py', code: 'raise SystemExit("broken on purpose")' },
    ]);
    await installTemplate(tessera, { id: 'chatty', description: '', app: 'chatty', partitioner: 'four', assembler: 'passthrough' });
    await installTemplate(tessera, { id: 'broken', description: '', app: 'broken', partitioner: 'four', assembler: 'passthrough', config: { maxTaskRetries: 0 } });

    const everything = await openEvents(tessera, '/v1/customer/events');
    const jobId = (await tessera.call('POST', '/v1/customer/jobs', { templateId: 'chatty', dataSource: { dataSourceDescriptor: 'bypass' } })).body.job.id;
    // Subscribed before the job runs: the per-job stream starts at the job's first event.
    const perJob = await openEvents(tessera, `/v1/customer/jobs/${jobId}/events`);
    assert.equal((await tessera.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
    await perJob.done;
    const states = perJob.events.filter((event) => event.event === 'state').map((event) => event.data.state);
    assert.deepEqual(states, JOB_STATES.filter((state) => state !== 'JOB_STATE_FAILED'), 'every state, in order, each once');
    assert.deepEqual(perJob.events.at(-1), { event: 'end', data: { jobId, state: 'JOB_STATE_COMPLETE' } });
    const progress = perJob.events.filter((event) => event.event === 'progress').map((event) => event.data);
    assert.deepEqual(progress.at(-1), { jobId, state: 'JOB_STATE_COMPLETE', tasksDone: 4, tasksFailed: 0, tasksTotal: 4 });
    const ids = perJob.events.filter((event) => event.id).map((event) => Number(event.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'event ids increase');

    // Logs, ByteNite's way: by service, task runner lines keyed by task id; WARNING lines found by level.
    const logs = await tessera.call('POST', '/v1/customer/logs', { jobId });
    assert.equal(logs.status, 200);
    checkResponse('post', '/v1/customer/logs', logs);
    assert.deepEqual(logs.body.partitioner.map((line: { log: string }) => line.log), ['splitting']);
    assert.deepEqual(logs.body.assembler, []);
    const runner = Object.values(logs.body.taskrunner as Record<string, { logs: { log: string; level: string; timestamp: string }[] }>);
    assert.equal(runner.length, 4);
    const lines = runner.flatMap((task) => task.logs.map((line) => `${line.level} ${line.log}`)).sort();
    assert.deepEqual(lines, [0, 1, 2, 3].flatMap((chunk) => [`INFO reading chunk ${chunk}`, `WARN WARNING: chunk ${chunk} looks short`]).sort());
    const warnings = await tessera.call('POST', '/v1/customer/logs', { jobId, levels: ['WARNING'], services: ['TASKRUNNER'] });
    assert.equal(Object.values(warnings.body.taskrunner as Record<string, { logs: unknown[] }>).flatMap((task) => task.logs).length, 4);
    const firstTask = Object.keys(logs.body.taskrunner)[0]!;
    const oneTask = await tessera.call('POST', '/v1/customer/logs', { jobId, taskIds: [firstTask] });
    assert.deepEqual(Object.keys(oneTask.body.taskrunner), [firstTask]);

    // The plain view pages by cursor; follow mode replays and ends because the job has ended.
    const page = await tessera.call('GET', `/v1/customer/jobs/${jobId}/logs?limit=3`);
    assert.equal(page.body.logs.length, 3);
    const rest = await tessera.call('GET', `/v1/customer/jobs/${jobId}/logs?after=${page.body.next}`);
    assert.equal(page.body.logs.length + rest.body.logs.length, 9);
    assert.equal(rest.body.ended, true);
    const followed = await openEvents(tessera, `/v1/customer/jobs/${jobId}/logs?follow=true`);
    await followed.done;
    assert.equal(followed.events.filter((event) => event.event === 'log').length, 9);
    assert.equal(followed.events.at(-1)!.event, 'end');

    // A failing job's stream ends at FAILED, with the app's words in the logs.
    const failing = await runJob(tessera, 'broken');
    const failed = await openEvents(tessera, `/v1/customer/jobs/${failing}/events`);
    await failed.done;
    assert.equal(failed.events.filter((event) => event.event === 'state').at(-1)!.data.state, 'JOB_STATE_FAILED');
    assert.deepEqual(failed.events.at(-1)!.data.state, 'JOB_STATE_FAILED');
    // SystemExit's message is a bare stderr line: it names no level (python logs INFO on stderr too).
    const failedLogs = await tessera.call('POST', '/v1/customer/logs', { jobId: failing, services: ['TASKRUNNER'], levels: ['UNKNOWN'] });
    assert.ok(Object.values(failedLogs.body.taskrunner as Record<string, { logs: { log: string }[] }>).some((task) => task.logs.some((line) => line.log === 'broken on purpose')));

    // The account-wide stream saw both jobs' states.
    await waitFor('the account stream to see both jobs end', async () => {
      const ends = everything.events.filter((event) => event.event === 'state' && ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(event.data.state)).map((event) => event.data.jobId);
      return ends.includes(jobId) && ends.includes(failing);
    }, 10_000);

    // Another account: 404 for the stream, the logs and the tasks.
    assert.equal((await openEvents(tessera, `/v1/customer/jobs/${jobId}/events`, tessera.otherApiKey)).status, 404);
    assert.equal((await tessera.call('POST', '/v1/customer/logs', { jobId }, tessera.otherApiKey)).status, 404);
    assert.equal((await tessera.call('GET', `/v1/customer/jobs/${jobId}/logs`, undefined, tessera.otherApiKey)).status, 404);
    assert.equal((await tessera.call('GET', `/v1/customer/jobs/${jobId}/tasks`, undefined, tessera.otherApiKey)).status, 404);
    const otherStream = await openEvents(tessera, '/v1/customer/events', tessera.otherApiKey);
    await new Promise((resolve) => setTimeout(resolve, 600));
    otherStream.close();
    everything.close();
    await Promise.all([otherStream.done, everything.done]);
    assert.deepEqual(otherStream.events, [], 'nothing of the first account');
  } finally {
    await tessera.stop();
  }
}, { timeout: 180_000 });

forEachEngine('resource accounting: CPU seconds, peak memory, units and payment of a job that burns known CPU', async (db) => {
  const tessera = await startTestTessera(db, { pricePerUnit: 2 });
  try {
    await installComponents(tessera, [
      { name: 'burn', type: 'app', entrypoint: 'main.py', code: BURN_APP },
      { name: 'four-parts', type: 'partitioner', entrypoint: 'main.py', code: SIX_CHUNKS },
    ]);
    await installTemplate(tessera, { id: 'burn', description: '', app: 'burn', partitioner: 'four-parts', assembler: 'passthrough' });
    const job = await ended(tessera, await runJob(tessera, 'burn'));
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
    const usage = job.usage;
    // Four chunks of 0.3 s each, plus interpreter start-up and the partitioner.
    assert.ok(usage.cpuSeconds >= 1.2 && usage.cpuSeconds < 6, `cpuSeconds ${usage.cpuSeconds}`);
    assert.ok(usage.wallSeconds >= usage.cpuSeconds * 0.8, `wallSeconds ${usage.wallSeconds}`);
    assert.ok(Number(usage.peakMemoryBytes) >= 40 * 1024 * 1024 && Number(usage.peakMemoryBytes) < 1024 ** 3, `peak ${usage.peakMemoryBytes}`);
    // Units: each attempt's CPU hours times its peak GiB; at least the app tasks' share.
    const floor = (4 * 0.3 / 3600) * (40 / 1024);
    assert.ok(usage.units >= floor && usage.units < (6 / 3600) * 1, `units ${usage.units}`);
    assert.equal(job.paymentAmount, Number((usage.units * 2).toFixed(8)));
    assert.equal(job.numUnitsEstimation, '1');
    assert.deepEqual([usage.tasksDone, usage.tasksTotal, usage.tasksFailed], [4, 4, 0]);

    const tasks = await tessera.call('GET', `/v1/customer/jobs/${job.id}/tasks`);
    assert.equal(tasks.status, 200);
    const apps = tasks.body.data.filter((task: { service: string }) => task.service === 'TASKRUNNER');
    assert.equal(apps.length, 4);
    for (const task of apps) {
      assert.ok(task.cpuSeconds >= (task.chunkIndex === 0 ? 0.58 : 0.28), `task ${task.chunkIndex}: cpu ${task.cpuSeconds}`);
      assert.ok(task.peakMemoryBytes >= (task.chunkIndex === 0 ? 90 : 40) * 1024 * 1024, `task ${task.chunkIndex}: peak ${task.peakMemoryBytes}`);
      assert.equal(task.state, 'succeeded');
    }
    const status = await tessera.call('GET', `/v1/customer/jobs/${job.id}`);
    checkResponse('get', '/v1/customer/jobs/{jobId}', status);
  } finally {
    await tessera.stop();
  }
}, { timeout: 180_000 });
