import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/config/config.js';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera } from '../helpers/tessera.js';

// The README's curl walk, run as written, top to bottom, by bash against a real server: only
// KEY, API and TEXT come from outside, as the walk says. It must create, change, run and follow
// a job to its end, read its results and delete it.

const run = promisify(execFile);

function curlWalk(): string {
  const readme = readFileSync(path.join(packageRoot(), 'README.md'), 'utf8');
  const block = /```sh\n(# your key[\s\S]*?)```/.exec(readme);
  assert.ok(block, 'the README has its curl walk (a sh block starting "# your key")');
  return block[1]!;
}

forEachEngine('the README\'s curl walk runs as written against a real server', async (db) => {
  const tessera = await startTestTessera(db);
  const text = http.createServer((_request, response) => response.end('We the People of the United States, in Order to form a more perfect Union\n'.repeat(20)));
  await new Promise<void>((resolve) => text.listen(0, '127.0.0.1', resolve));
  try {
    const env = { PATH: process.env.PATH ?? '', KEY: tessera.apiKey, API: `${tessera.url}/v1/customer`, TEXT: `http://127.0.0.1:${(text.address() as AddressInfo).port}/constitution.txt` };
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', curlWalk()], { env, timeout: 120_000 });
    assert.match(stdout, /"templateId":"word-count"/);
    assert.match(stdout, /"state":"JOB_STATE_COMPLETE"/, stdout.slice(-2000));
    assert.match(stdout, /"results":\[\{"name":"counts\.json","link":"http:\/\/[^"]+signature=/);
    assert.match(stdout, /"message":"job [0-9A-Z]{26} deleted"/, stdout.slice(-500));
    assert.doesNotMatch(stdout, /"code":\d+/, 'no call of the walk was refused');
  } finally {
    text.close();
    await tessera.stop();
  }
});
