import assert from 'node:assert/strict';
import type { Db } from '../../src/store/db.js';
import { openDb } from '../../src/store/db.js';
import { forPostgres } from '../helpers/db.js';

// The PostgreSQL server's connections: parameterised queries run as named prepared statements
// (each text parsed once per connection), unless turned off, and survive a column's type being
// changed under them.

/** A second handle on the test's schema with one connection, so what it prepared can be seen. */
async function withOneConnection(databaseUrl: string, schema: string, preparedStatements: boolean, body: (db: Db) => Promise<void>): Promise<void> {
  const db = await openDb({ databaseUrl, schema, poolSize: 1, preparedStatements });
  try {
    await body(db);
  } finally {
    await db.close();
  }
}

const preparedTexts = (db: Db) =>
  db.query<{ statement: string }>(`SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%answer_%' ORDER BY statement`);

forPostgres('parameterised queries are prepared once per connection; texts without parameters and a server told not to prepare are not', async (_db, databaseUrl, schema) => {
  await withOneConnection(databaseUrl, schema, true, async (db) => {
    for (let round = 0; round < 3; round++) {
      assert.deepEqual(await db.query(`SELECT $1::int + 1 AS answer_a`, [round]), [{ answer_a: round + 1 }]);
      assert.deepEqual(await db.query(`SELECT $1::text || $2::text AS answer_b`, ['x', round]), [{ answer_b: `x${round}` }]);
    }
    await db.query(`SELECT 42 AS answer_c`);
    await db.transaction((tx) => tx.query(`SELECT $1::int AS answer_d`, [7]));
    assert.deepEqual((await preparedTexts(db)).map((row) => row.statement), [
      'SELECT $1::int + 1 AS answer_a',
      'SELECT $1::int AS answer_d',
      'SELECT $1::text || $2::text AS answer_b',
    ]);
  });
  await withOneConnection(databaseUrl, schema, false, async (db) => {
    assert.deepEqual(await db.query(`SELECT $1::int + 1 AS answer_a`, [1]), [{ answer_a: 2 }]);
    assert.deepEqual(await preparedTexts(db), [], 'TESSERA_DATABASE_PREPARED_STATEMENTS=0 prepares nothing');
  });
});

forPostgres('a column whose type changes under a running server: its statements run unnamed from then on', async (db, databaseUrl, schema) => {
  await db.exec(`CREATE TABLE sample (id int PRIMARY KEY, value int); INSERT INTO sample VALUES (1, 10)`);
  await withOneConnection(databaseUrl, schema, true, async (server) => {
    const read = `SELECT value FROM sample WHERE id = $1`;
    const readInTransaction = `SELECT value, id FROM sample WHERE id = $1`;
    assert.deepEqual(await server.query(read, [1]), [{ value: 10 }]);
    assert.deepEqual(await server.transaction((tx) => tx.query(readInTransaction, [1])), [{ value: 10, id: 1 }]);
    // Another process migrates (a different connection).
    await db.exec(`ALTER TABLE sample ALTER COLUMN value TYPE text USING value::text`);
    // Inside a transaction the refused statement has aborted it, so that one attempt fails …
    await assert.rejects(server.transaction((tx) => tx.query(readInTransaction, [1])), /cached plan must not change result type/);
    // … and the next runs unnamed.
    assert.deepEqual(await server.transaction((tx) => tx.query(readInTransaction, [1])), [{ value: '10', id: 1 }]);
    // Outside one it is sent again at once.
    assert.deepEqual(await server.query(read, [1]), [{ value: '10' }]);
    assert.deepEqual(await server.query(read, [1]), [{ value: '10' }]);
  });
});
