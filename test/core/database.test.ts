import path from 'node:path';
import { openDatabase } from '../../src/core/db/index.js';
import { dropPostgresSchema } from '../../src/core/db/postgres.js';
import { describeDatabaseContract } from '../contract/database.contract.js';
import { engineGate, postgresReachable, POSTGRES_URL, tempHome, uniqueName } from '../helpers/engines.js';

describeDatabaseContract('SQLite (embedded)', async () => {
  const home = tempHome();
  const database = await openDatabase(`sqlite:${path.join(home.dir, 'x.db')}`);
  return { value: database, cleanup: async () => (await database.close(), home.cleanup()) };
});

describeDatabaseContract('PostgreSQL (scale)', async () => {
  if (!(await engineGate('PostgreSQL', await postgresReachable()))) return null;
  const schema = uniqueName('ct');
  const database = await openDatabase(POSTGRES_URL, { schema });
  return { value: database, cleanup: async () => (await database.close(), await dropPostgresSchema(POSTGRES_URL, schema)) };
});
