import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jsonOf, runCli, TESSERA_BIN } from '../helpers/cli.js';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera } from '../helpers/tessera.js';

// The developer's day, through real `tessera` processes against a real server: scaffold an app,
// push it (with its template), run a job with `tessera job run`, read its status, logs and
// results; deactivate, activate, pull; another account sees none of it.

forEachEngine('push an app with the CLI, run it with tessera job run, read status, logs and results', async (db) => {
  const tessera = await startTestTessera(db);
  const work = mkdtempSync(path.join(tmpdir(), 'tessera-dev-'));
  const env = { TESSERA_URL: tessera.url, TESSERA_API_KEY: tessera.apiKey };
  const cli = async (...args: string[]) => {
    const result = await runCli(args, { cwd: work, env });
    assert.equal(result.code, 0, `tessera ${args.join(' ')} failed:\n${result.stderr}${result.stdout}`);
    return result;
  };
  try {
    const scaffold = jsonOf(await cli('app', 'new', 'line-stats', '--json'));
    assert.equal(scaffold.type, 'app');
    assert.ok(existsSync(path.join(work, 'line-stats', 'app', 'main.py')));
    const pushed = jsonOf(await cli('app', 'push', 'line-stats', '--json'));
    assert.deepEqual([pushed.name, pushed.version, pushed.status, pushed.builtin], ['line-stats', '1.0', 'active', false]);
    assert.match(pushed.archive.sha256, /^[0-9a-f]{64}$/);
    assert.ok(jsonOf(await cli('template', 'list', '--json')).some((template: { id: string }) => template.id === 'line-stats'), 'the app brought its template.json');

    // A partitioner of our own, and a template binding the three.
    jsonOf(await cli('engine', 'new', 'by-lines', '--type', 'partitioner', '--json'));
    assert.equal(jsonOf(await cli('engine', 'push', 'by-lines', '--json')).type, 'partitioner');
    await cli('template', 'new', 'stats', 'stats.json', '--app', 'line-stats@1', '--partitioner', 'by-lines', '--assembler', 'passthrough');
    const template = JSON.parse(readFileSync(path.join(work, 'stats.json'), 'utf8'));
    template.params.partitioner = { chunks: 3 };
    writeFileSync(path.join(work, 'stats.json'), JSON.stringify(template));
    assert.equal(jsonOf(await cli('template', 'push', 'stats.json', '--json')).id, 'stats');

    // The input is served by the test, as a customer's file on a web server would be.
    const input = Array.from({ length: 30 }, (_, line) => `line ${line} of the input`).join('\n');
    const http = await import('node:http');
    const server = http.createServer((_request, response) => response.end(input));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/input.txt`;
    try {
      const run = jsonOf(await cli('job', 'run', '--template', 'stats', '--url', url, '--name', 'cli run', '--download', 'out', '--json'));
      assert.equal(run.job.state, 'JOB_STATE_COMPLETE', run.job.errorMessage);
      assert.equal(run.job.numChunks, 3);
      assert.deepEqual(run.results.map((result: { name: string }) => result.name).sort(), ['0_summary.json', '1_summary.json', '2_summary.json']);
      const words = run.downloaded.map((file: string) => JSON.parse(readFileSync(file, 'utf8')).words as number).reduce((sum: number, count: number) => sum + count, 0);
      assert.equal(words, input.split(/\s+/).length, 'every word counted once across the chunks');
      for (const file of run.downloaded) assert.ok(file.startsWith(path.join(work, 'out') + path.sep));

      const status = await cli('job', 'status', run.job.id);
      assert.match(status.stdout, /JOB_STATE_COMPLETE/);
      assert.match(status.stdout, /3\/3 done/);
      assert.match(status.stdout, /CPU s/);

      const logs = await cli('job', 'logs', run.job.id);
      assert.match(logs.stdout, /PARTITIONER .*INFO +3 chunks of up to 10 lines/);
      for (const chunk of [0, 1, 2]) assert.match(logs.stdout, new RegExp(`TASKRUNNER  chunk ${chunk} INFO +chunk ${chunk}: \\d+ words`));

      // The same input as a local file: uploaded by the CLI (file data source), then run.
      writeFileSync(path.join(work, 'input.txt'), input);
      const uploaded = jsonOf(await cli('job', 'run', '--template', 'stats', '--file', 'input.txt', '--json'));
      assert.equal(uploaded.job.state, 'JOB_STATE_COMPLETE', uploaded.job.errorMessage);
      assert.equal(uploaded.job.dataSource.dataSourceDescriptor, 'file');
      assert.equal(uploaded.job.numChunks, 3);
      const both = await runCli(['job', 'create', '--template', 'stats', '--file', 'input.txt', '--url', url], { cwd: work, env });
      assert.notEqual(both.code, 0);
      assert.match(both.stderr, /give one input: --url, --file or --source/);

      const listed = jsonOf(await cli('job', 'filter', '--state', 'COMPLETE', '--template', 'stats', '--json'));
      assert.deepEqual(listed.data.map((job: { id: string }) => job.id).sort(), [run.job.id, uploaded.job.id].sort());

      // A deactivated version is not resolved: the run is refused up front with the reason.
      assert.equal(jsonOf(await cli('app', 'deactivate', 'line-stats@1.0', '--json')).status, 'inactive');
      assert.equal(jsonOf(await cli('app', 'status', 'line-stats', '--json')).status, 'inactive');
      const refused = await runCli(['job', 'run', '--template', 'stats', '--url', url], { cwd: work, env });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /names the app "line-stats@1", which is not installed or not active/);
      assert.match(refused.stderr, /hint: push the app/);
      await cli('app', 'activate', 'line-stats@1.0');

      // Pull gives back the same folder.
      await cli('app', 'pull', 'line-stats', 'pulled');
      assert.equal(readFileSync(path.join(work, 'pulled', 'app', 'main.py'), 'utf8'), readFileSync(path.join(work, 'line-stats', 'app', 'main.py'), 'utf8'));

      // Another account sees only the built-ins: not this app, not this template, not this job.
      const other = { TESSERA_URL: tessera.url, TESSERA_API_KEY: tessera.otherApiKey };
      const otherApps = jsonOf(await runCli(['app', 'list', '--json'], { cwd: work, env: other }));
      assert.ok(otherApps.every((app: { builtin: boolean }) => app.builtin));
      const otherGet = await runCli(['app', 'get', 'line-stats'], { cwd: work, env: other });
      assert.equal(otherGet.code, 1);
      assert.match(otherGet.stderr, /app "line-stats" was not found/);
      const otherRun = await runCli(['job', 'run', '--template', 'stats'], { cwd: work, env: other });
      assert.match(otherRun.stderr, /template "stats" was not found/);
      assert.match((await runCli(['job', 'status', run.job.id], { cwd: work, env: other })).stderr, /job ".*" was not found/);
    } finally {
      server.close();
    }

    // Errors from the server are one line and a hint, with a non-zero exit.
    const noKey = await runCli(['job', 'list'], { cwd: work, env: { TESSERA_URL: tessera.url } });
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /^error: no API key given\n {2}hint: pass --key or set TESSERA_API_KEY/);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await tessera.stop();
  }
}, { timeout: 240_000 });

forEachEngine('tessera job watch in a terminal draws the progress bar as tasks finish, then the links', async (db, engine) => {
  if (engine === 'postgres') return; // one engine is enough for what the terminal shows
  assert.equal(spawnSync('script', ['--version']).status, 0, 'util-linux script(1) provides the pseudo-terminal');
  const tessera = await startTestTessera(db, { workerSlots: 1 });
  const work = mkdtempSync(path.join(tmpdir(), 'tessera-watch-'));
  try {
    const env = { TESSERA_URL: tessera.url, TESSERA_API_KEY: tessera.apiKey };
    assert.equal((await runCli(['app', 'new', 'naps', 'naps'], { cwd: work, env })).code, 0);
    // Each chunk takes a moment, so the bar is seen at several counts.
    const main = path.join(work, 'naps', 'app', 'main.py');
    writeFileSync(main, `import time\ntime.sleep(0.4)\n${readFileSync(main, 'utf8')}`);
    assert.equal((await runCli(['app', 'push', 'naps'], { cwd: work, env })).code, 0);
    writeFileSync(path.join(work, 'tpl.json'), JSON.stringify({ id: 'naps6', app: 'naps', partitioner: 'by-lines-6', assembler: 'passthrough' }));
    assert.equal((await runCli(['engine', 'new', 'by-lines-6', '--type', 'partitioner'], { cwd: work, env })).code, 0);
    // A fan-out partitioner: six chunks whatever the input (a bypass source gives it a placeholder).
    writeFileSync(path.join(work, 'by-lines-6', 'app', 'main.py'), 'import os\nfor i in range(6):\n    open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i}.bin"), "w").write(f"chunk {i}\\n")\n');
    assert.equal((await runCli(['engine', 'push', 'by-lines-6'], { cwd: work, env })).code, 0);
    assert.equal((await runCli(['template', 'push', 'tpl.json'], { cwd: work, env })).code, 0);
    const created = jsonOf(await runCli(['job', 'create', '--template', 'naps6', '--source', JSON.stringify({ dataSourceDescriptor: 'bypass' }), '--json'], { cwd: work, env }));
    const started = await runCli(['job', 'run', created.id, '--no-watch'], { cwd: work, env });
    assert.equal(started.code, 0, started.stderr);

    // script(1) gives the command a real pseudo-terminal, so it draws the bar in place.
    const command = `${process.execPath} ${TESSERA_BIN} job watch ${created.id}`;
    const watched = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { PATH: process.env.PATH ?? '', TERM: 'xterm', ...env } });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('close', (code) => resolve({ code, output }));
    });
    assert.equal(watched.code, 0, watched.output);
    const frames = watched.output.split(/\r|\n/).filter((line) => /tasks/.test(line));
    const counts = new Set(frames.map((frame) => /(\d+)\/6 tasks/.exec(frame)?.[1]).filter(Boolean));
    assert.ok(counts.size >= 3, `the bar advanced through several counts: ${[...counts].join(', ')}`);
    assert.match(watched.output, /\x1b\[2K/, 'redrawn in place on the terminal');
    assert.match(watched.output, /█{28} 6\/6 tasks/, 'a full bar at the end');
    assert.match(watched.output, /JOB_STATE_COMPLETE/);
    assert.match(watched.output, /results:[\s\S]*summary\.json\s+http:\/\/127\.0\.0\.1:\d+\/v1\/files\//);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await tessera.stop();
  }
}, { timeout: 180_000 });
