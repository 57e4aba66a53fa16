import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createKeyCheck, createKey } from '../../src/engine/accounts.js';
import { TesseraError } from '../../src/domain/errors.js';
import { hashSecret } from '../../src/domain/ids.js';
import { findApiKeyByHash, insertAccount, insertApiKey } from '../../src/store/accounts.js';
import { describeSchema, listMigrations, migrate, MIGRATIONS_DIR } from '../../src/store/migrate.js';
import { getOrCreateSetting } from '../../src/store/settings.js';
import { forEachEngine } from '../helpers/db.js';

// The migrations build the schema that is checked in (migrations/schema.txt), the same on PGlite
// and on the server. After adding a migration: npm run build && node scripts/dump-schema.mjs

forEachEngine('migrations build the checked-in schema and apply only once', async (db) => {
  const names = listMigrations().map((migration) => migration.name);
  // Numbered 0001, 0002, … with no gap or repeat: the order they apply in is the order they were written.
  assert.deepEqual(listMigrations().map((migration) => migration.version), names.map((_, index) => index + 1));
  assert.deepEqual(await migrate(db), names);
  assert.deepEqual(await migrate(db), [], 'a second start applies nothing');
  const expected = readFileSync(path.join(MIGRATIONS_DIR, 'schema.txt'), 'utf8');
  assert.equal(await describeSchema(db), expected, 'the schema differs from migrations/schema.txt; if the change is intended: npm run build && node scripts/dump-schema.mjs');
});

forEachEngine('concurrent starts migrate once', async (db) => {
  const applied = await Promise.all([migrate(db), migrate(db), migrate(db)]);
  assert.deepEqual(applied.flat(), listMigrations().map((migration) => migration.name));
});

forEachEngine('keys are found by hash only; settings are created once', async (db) => {
  await insertAccount(db, 'acct001');
  await insertApiKey(db, { id: 'k1', accountId: 'acct001', keyHash: 'hash-1', keyPrefix: 'tsk_abcd', scope: 'customer' });
  assert.deepEqual(await findApiKeyByHash(db, 'hash-1'), { id: 'k1', accountId: 'acct001', scope: 'customer', role: 'customer' });
  assert.equal(await findApiKeyByHash(db, 'hash-2'), null);
  await db.query(`UPDATE api_keys SET revoked_at = now() WHERE id = 'k1'`);
  assert.equal(await findApiKeyByHash(db, 'hash-1'), null, 'a revoked key no longer works');
  const first = await getOrCreateSetting(db, 'secret', () => 'one');
  assert.equal(first, 'one');
  assert.equal(await getOrCreateSetting(db, 'secret', () => 'two'), 'one');
}, { migrated: true });

forEachEngine('a key check remembers found keys for a moment only, never unknown ones, and always checks the scope', async (db) => {
  const refused = (error: unknown) => error instanceof TesseraError && error.code === 'UNAUTHENTICATED';
  const customer = await createKey(db, {});
  const worker = await createKey(db, { accountId: customer.accountId, scope: 'worker' });
  const keys = createKeyCheck(db, 300);
  assert.equal(await keys.authenticate(customer.apiKey, 'customer'), customer.accountId);
  // Remembered with its scope: the customer key is still no worker token.
  await assert.rejects(keys.authenticate(customer.apiKey, 'worker'), refused);
  assert.equal(await keys.authenticate(worker.apiKey, 'worker'), customer.accountId);

  // A key made after an unknown one was presented works at once: misses are not remembered.
  const late = `${customer.apiKey.slice(0, -4)}zzzz`;
  await assert.rejects(keys.authenticate(late, 'customer'), refused);
  await insertApiKey(db, { id: 'late', accountId: customer.accountId, keyHash: hashSecret(late), keyPrefix: late.slice(0, 8), scope: 'customer' });
  assert.equal(await keys.authenticate(late, 'customer'), customer.accountId);

  // Revoked in the database: trusted until the moment passes, then refused.
  await db.query('UPDATE api_keys SET revoked_at = now() WHERE account_id = $1 AND scope = $2', [customer.accountId, 'customer']);
  assert.equal(await keys.authenticate(customer.apiKey, 'customer'), customer.accountId, 'within the moment the remembered answer stands');
  await new Promise((resolve) => setTimeout(resolve, 350));
  await assert.rejects(keys.authenticate(customer.apiKey, 'customer'), refused);
  await assert.rejects(keys.authenticate(customer.apiKey, 'customer'), refused, 'and stays refused');
  assert.equal(await keys.authenticate(worker.apiKey, 'worker'), customer.accountId, 'the other key still works');
}, { migrated: true });
