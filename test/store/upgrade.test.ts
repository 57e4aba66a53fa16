import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listMigrations, migrate } from '../../src/store/migrate.js';
import { forEachEngine } from '../helpers/db.js';
import { startTestTessera, waitFor } from '../helpers/tessera.js';

// An upgrade across versions with work in flight. The older version's schema is the first
// OLDER_VERSION migrations of this tree (migrations are append-only, so that is exactly the schema
// the release before 0014 made); its job is written with that schema's columns, as the older code
// wrote it: started, its partition task leased by a worker that went away with the upgrade.

const OLDER_VERSION = 13;
const TEXT = 'one fish two fish red fish blue fish\n';

forEachEngine('a database of an older version is migrated with a job in flight, and the job completes', async (db) => {
  const migrations = listMigrations();
  assert.ok(migrations.length > OLDER_VERSION, 'this version has migrations past the older one');
  assert.deepEqual(await migrate(db, migrations.slice(0, OLDER_VERSION)), migrations.slice(0, OLDER_VERSION).map((migration) => migration.name));

  const source = http.createServer((_request, response) => response.end(TEXT));
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(source.address() as AddressInfo).port}/fish.txt`;
  await db.query(`INSERT INTO accounts (id) VALUES ('olderacct')`);
  await db.query(
    `INSERT INTO jobs (id, account_id, template_id, name, state, data_source, data_destination, params, state_timestamps, submitted_at, started_at)
     VALUES ('olderjob', 'olderacct', 'word-count', 'from the older version', 'JOB_STATE_STARTED', $1::jsonb, '{"dataSourceDescriptor": "bucket"}', '{"partitioner": {"chunks": 2}}',
             jsonb_build_object('JOB_STATE_NEW', now(), 'JOB_STATE_STARTED', now()), now(), now())`,
    [JSON.stringify({ dataSourceDescriptor: 'url', params: { url } })],
  );
  await db.query(
    `INSERT INTO tasks (job_id, kind, chunk_index, state, attempt, max_attempts, lease_owner, lease_token, lease_expires_at, started_at)
     VALUES ('olderjob', 'partition', 0, 'leased', 1, 3, 'worker-of-the-older-version', 'gone', now() - interval '1 minute', now() - interval '2 minutes')`,
  );

  const applied = await migrate(db);
  assert.deepEqual(applied, migrations.slice(OLDER_VERSION).map((migration) => migration.name));
  const [task] = await db.query<{ account_id: string | null }>(`SELECT account_id FROM tasks WHERE job_id = 'olderjob'`);
  assert.equal(task?.account_id, 'olderacct', 'the in-flight task was given its account by the migration');

  const tessera = await startTestTessera(db);
  try {
    const job = await waitFor('the older version\'s job to end', async () => {
      const [row] = await db.query<{ state: string; error_message: string | null }>(`SELECT state, error_message FROM jobs WHERE id = 'olderjob'`);
      return row && ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(row.state) ? row : undefined;
    }, 90_000);
    assert.equal(job.state, 'JOB_STATE_COMPLETE', job.error_message ?? '');
    const [partition] = await db.query<{ attempt: number; state: string }>(`SELECT attempt, state FROM tasks WHERE job_id = 'olderjob' AND kind = 'partition'`);
    assert.equal(partition?.state, 'succeeded');
  } finally {
    await tessera.stop();
    source.close();
  }
}, { timeout: 180_000 });
