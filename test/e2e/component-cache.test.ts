import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { withFreshDb } from '../helpers/db.js';
import { firstResult, installComponents, installTemplate, runToEnd } from '../helpers/components.js';
import type { TestTessera } from '../helpers/tessera.js';
import { startTestTessera } from '../helpers/tessera.js';

// A worker's component cache is checked before a process first uses a folder: one changed on disk
// (by anything outside a sandbox: tasks see it read-only) is refused, removed and unpacked anew, so
// the next job of any account runs the component as it was pushed.

const SAYS_APP = 'import os\nopen(os.path.join(os.environ["TASK_RESULTS_DIR"], "said.txt"), "w").write("as pushed")\n';

async function said(tessera: TestTessera): Promise<string> {
  const job = await runToEnd(tessera, { templateId: 'says', dataSource: { dataSourceDescriptor: 'bypass' } });
  assert.equal(job.state, 'JOB_STATE_COMPLETE', job.errorMessage);
  return firstResult(tessera, job.id);
}

test('a component folder changed on disk is refused and unpacked anew before its next use', { timeout: 120_000 }, async () => {
  await withFreshDb('pglite', async (db) => {
    // One home for two starts of Tessera, as a worker restarted on the same machine.
    const home = mkdtempSync(path.join(tmpdir(), 'tessera-cache-check-'));
    const folders = { home, workDir: path.join(home, 'work'), runtimeDir: path.join(home, 'runtime') };
    try {
      let tessera = await startTestTessera(db, folders);
      await installComponents(tessera, [{ name: 'says', type: 'app', entrypoint: 'main.py', code: SAYS_APP }]);
      await installTemplate(tessera, { id: 'says', description: '', app: 'says', partitioner: 'passthrough', assembler: 'passthrough' });
      assert.equal(await said(tessera), 'as pushed');
      await tessera.stop();

      // Changed while no worker ran: the entrypoint appended to, a module planted beside it.
      const cache = path.join(home, 'cache', 'components');
      const [sha] = readdirSync(cache).filter((name) => /^[0-9a-f]{64}$/.test(name));
      assert.ok(sha);
      const entrypoint = path.join(cache, sha, 'app', 'main.py');
      const pushed = readFileSync(entrypoint, 'utf8');
      appendFileSync(entrypoint, '\nopen(os.path.join(os.environ["TASK_RESULTS_DIR"], "said.txt"), "w").write("planted")\n');
      writeFileSync(path.join(cache, sha, 'app', 'json.py'), 'raise SystemExit("planted")\n');

      tessera = await startTestTessera(db, folders);
      try {
        assert.equal(await said(tessera), 'as pushed');
        assert.equal(readFileSync(entrypoint, 'utf8'), pushed);
        assert.deepEqual(readdirSync(path.join(cache, sha, 'app')), ['main.py']);
      } finally {
        await tessera.stop();
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
