import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../src/config/config.js';
import { findApiKeyByHash, insertAccount, insertApiKey } from '../../src/store/accounts.js';
import { describeSchema, migrate } from '../../src/store/migrate.js';
import { getOrCreateSetting } from '../../src/store/settings.js';
import { forEachEngine } from '../helpers/db.js';

// The migrations build the schema that is checked in (migrations/schema.txt), the same on PGlite
// and on the server. After adding a migration: npm run build && node scripts/dump-schema.mjs

forEachEngine('migrations build the checked-in schema and apply only once', async (db) => {
  assert.deepEqual(await migrate(db), ['0001_init.sql', '0002_cancelling_tasks.sql', '0003_workers.sql']);
  assert.deepEqual(await migrate(db), [], 'a second start applies nothing');
  const expected = readFileSync(path.join(packageRoot(), 'migrations', 'schema.txt'), 'utf8');
  assert.equal(await describeSchema(db), expected);
});

forEachEngine('concurrent starts migrate once', async (db) => {
  const applied = await Promise.all([migrate(db), migrate(db), migrate(db)]);
  assert.deepEqual(applied.flat(), ['0001_init.sql', '0002_cancelling_tasks.sql', '0003_workers.sql']);
});

forEachEngine('keys are found by hash only; settings are created once', async (db) => {
  await migrate(db);
  await insertAccount(db, 'acct001');
  await insertApiKey(db, { id: 'k1', accountId: 'acct001', keyHash: 'hash-1', keyPrefix: 'tsk_abcd', scope: 'customer' });
  assert.deepEqual(await findApiKeyByHash(db, 'hash-1'), { accountId: 'acct001', scope: 'customer' });
  assert.equal(await findApiKeyByHash(db, 'hash-2'), null);
  await db.query(`UPDATE api_keys SET revoked_at = now() WHERE id = 'k1'`);
  assert.equal(await findApiKeyByHash(db, 'hash-1'), null, 'a revoked key no longer works');
  const first = await getOrCreateSetting(db, 'secret', () => 'one');
  assert.equal(first, 'one');
  assert.equal(await getOrCreateSetting(db, 'secret', () => 'two'), 'one');
});
