import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { packageRoot } from '../../src/config/config.js';
import { jsonOf, runCli, TESSERA_BIN } from '../helpers/cli.js';
import { installComponents, installTemplate, runToEnd } from '../helpers/components.js';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera } from '../helpers/tessera.js';

// The client commands' rough edges (issue 30), through real `tessera` processes: the version, a
// closed pipe, a forgotten input, keys refused in a client's words, hints naming commands.

// 1,000 lines of 120 characters: more than a pipe holds, so the CLI is still writing when `head` leaves.
const CHATTY_APP = 'for line in range(1000):\n    print(f"line {line:04d} " + "x" * 110)\n';

test('tessera --version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8'));
  for (const flag of ['--version', '-V']) {
    const result = await runCli([flag]);
    assert.deepEqual([result.code, result.stdout, result.stderr], [0, `${version}\n`, '']);
  }
});

test('a short key is refused by the client, worded for a client, never echoed whole', async () => {
  const result = await runCli(['job', 'list'], { env: { TESSERA_URL: 'http://127.0.0.1:9', TESSERA_API_KEY: 'tsk_short' } });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: the API key from TESSERA_API_KEY \("tsk…", 9 characters\) is not a Tessera key: keys are 16 to 512 characters without spaces\n {2}hint: use the key `tessera up` printed/);
  assert.doesNotMatch(result.stderr, /a random string|tsk_short/, 'not the server\'s rule for a first key, and not the key');
  const flag = await runCli(['whoami', '--key', 'nope'], { env: { TESSERA_URL: 'http://127.0.0.1:9' } });
  assert.match(flag.stderr, /the API key from --key \("n…", 4 characters\) is not a Tessera key/);
});

forEachEngine('client commands against a server: wrong keys, closed pipes, missing input, hints', async (db) => {
  const tessera = await startTestTessera(db, { workerSlots: 1 });
  const env = { TESSERA_URL: tessera.url, TESSERA_API_KEY: tessera.apiKey };
  try {
    await installComponents(tessera, [{ name: 'chatty', type: 'app', entrypoint: 'main.py', code: CHATTY_APP }]);
    await installTemplate(tessera, { id: 'chatty', description: '', app: 'chatty', partitioner: 'passthrough', assembler: 'passthrough' });

    await test('a key the server does not know is named as the client gave it', async () => {
      const wrong = await runCli(['job', 'list'], { env: { ...env, TESSERA_API_KEY: `tsk_${'0'.repeat(32)}` } });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, new RegExp(`^error: ${tessera.url.replace(/[.]/g, '\\.')} refused the API key from TESSERA_API_KEY: the API key is not valid\n {2}hint: use the key \`tessera up\` printed, or make one with \`tessera key create\``));
      assert.doesNotMatch(wrong.stderr, /Authorization header/);
    });

    await test('a job without input is refused unless its template takes none', async () => {
      const refused = await runCli(['job', 'run', '--template', 'chatty'], { env });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^error: template "chatty" reads an input, and none was given\n {2}hint: pass --file PATH, --url URL or --source JSON/);
      assert.equal((await tessera.call('GET', '/v1/customer/jobs')).body.data.length, 0, 'no job was made');
      // noop declares a bypass source: it takes no input.
      const created = await runCli(['job', 'create', '--template', 'noop', '--json'], { env });
      assert.equal(created.code, 0, created.stderr);
      assert.equal(jsonOf(created).dataSource.dataSourceDescriptor, 'bypass');
    });

    await test('hints name CLI commands, not HTTP routes', async () => {
      const missing = await runCli(['job', 'status', 'nosuchjob'], { env });
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /hint: list your jobs with `tessera job list`/);
      const template = await runCli(['job', 'run', '--template', 'nosuch'], { env });
      assert.match(template.stderr, /template "nosuch" was not found\n {2}hint: `tessera template list` lists the templates/);
    });

    await test('job logs | head -1 ends quietly with 0 when head has gone', async () => {
      const job = await runToEnd(tessera, { templateId: 'chatty', dataSource: { dataSourceDescriptor: 'bypass' } });
      assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
      const piped = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        // pipefail: the pipeline's status is the CLI's own, not only head's.
        const child = spawn('bash', ['--norc', '--noprofile', '-o', 'pipefail', '-c', `"${process.execPath}" "${TESSERA_BIN}" job logs ${job.id} | head -1`], { env: { PATH: process.env.PATH ?? '', ...env } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk) => (stdout += chunk));
        child.stderr.on('data', (chunk) => (stderr += chunk));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      assert.equal(piped.stderr, '', 'no EPIPE stack trace');
      assert.equal(piped.code, 0);
      assert.match(piped.stdout, /^\S+ TASKRUNNER {2}chunk 0 INFO {2}line 0000 x+\n$/);
    });
  } finally {
    await tessera.stop();
  }
}, { timeout: 180_000 });
