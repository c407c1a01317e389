import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { openDatabase } from '../../../src/core/db/index.js';
import { dropPostgresSchema } from '../../../src/core/db/postgres.js';
import { engineGate, POSTGRES_URL, postgresReachable, uniqueName } from '../../helpers/engines.js';

// Found by the scaled suite (test/scaled): PostgreSQL stopped while a replica held a connection
// inside a transaction crashed the replica with an unhandled 'error' event on the pg Client.
test('a connection lost inside a transaction fails that transaction, not the process; the next query reconnects', async (t) => {
  if (!(await engineGate('PostgreSQL (connection loss)', await postgresReachable()))) return t.skip('PostgreSQL unreachable');
  const schema = uniqueName('connloss');
  const database = await openDatabase(POSTGRES_URL, { schema });
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => void uncaught.push(err);
  process.prependListener('uncaughtException', onUncaught);
  try {
    const failed = await database.db
      .transaction()
      .execute(async (trx) => {
        const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]!.pid;
        // Another connection ends this one while it is checked out and idle between statements.
        await sql`select pg_terminate_backend(${pid})`.execute(database.db);
        await new Promise((r) => setTimeout(r, 200));
        await sql`select 1`.execute(trx);
      })
      .then(
        () => null,
        (err: unknown) => err,
      );
    assert.ok(failed instanceof Error, 'the transaction on the lost connection fails');
    assert.deepEqual(uncaught, [], 'no unhandled error event');
    const row = (await sql<{ one: number }>`select 1 as one`.execute(database.db)).rows[0];
    assert.equal(row?.one, 1);
  } finally {
    process.removeListener('uncaughtException', onUncaught);
    await database.close();
    await dropPostgresSchema(POSTGRES_URL, schema);
  }
});
