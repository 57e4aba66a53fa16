import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { listMigrations } from '../../src/store/migrate.js';
import { jsonOf, runCli } from '../helpers/cli.js';

// `tessera migrate`: the deployment's migration step (the Kubernetes Job, the systemd unit's
// ExecStartPre), and `--wait`, which holds a server until another process has migrated.

test('tessera migrate applies every migration once, and --wait passes only on a migrated database', async (t) => {
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-migrate-'));
  const empty = mkdtempSync(path.join(tmpdir(), 'tessera-migrate-empty-'));
  try {
    await t.test('--wait on a database nobody migrates gives up after its deadline, saying what is missing', async () => {
      const started = Date.now();
      const waited = await runCli(['migrate', '--home', empty, '--wait', '1']);
      assert.equal(waited.code, 1);
      assert.match(waited.stderr, /after 1 s the database still lacks 0001_init\.sql, .*\n\s+hint: run `tessera migrate` with this version/);
      assert.ok(Date.now() - started < 30_000);
    });
    await t.test('the first run applies them all, the second none', async () => {
      const first = await runCli(['migrate', '--home', home, '--json']);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(jsonOf(first).applied, listMigrations().map((migration) => migration.name));
      const second = await runCli(['migrate', '--home', home]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stdout.trim(), 'the database is up to date');
    });
    await t.test('--wait on a migrated database returns at once', async () => {
      const waited = await runCli(['migrate', '--home', home, '--wait', '60', '--json']);
      assert.equal(waited.code, 0, waited.stderr);
      assert.deepEqual(jsonOf(waited), { pending: [] });
    });
    await t.test('a bad --wait is refused', async () => {
      const bad = await runCli(['migrate', '--home', home, '--wait', 'soon']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /--wait "soon": expected whole seconds from 0 to 86400\n\s+hint: for example --wait 600/);
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  }
});
