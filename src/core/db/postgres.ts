import { Kysely, PostgresDialect } from 'kysely';
import { wrapDatabase, type Database } from './database.js';

export interface PostgresOptions {
  /** Schema to create (if missing) and put first on the search_path; used to isolate test runs. */
  schema?: string;
  max?: number;
}

/** PostgreSQL through pg (scale path). pg is loaded lazily so the embedded path never imports it. */
export async function createPostgresDatabase(url: string, options: PostgresOptions = {}): Promise<Database> {
  const pg = (await import('pg')).default;
  // int8 (COUNT, bigint epoch-ms columns) as JS numbers, like SQLite returns them.
  pg.types.setTypeParser(20, (v: string) => Number(v));
  pg.types.setTypeParser(1700, (v: string) => Number(v));
  const schema = options.schema;
  if (schema && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name '${schema}'`);
  if (schema) {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(`create schema if not exists ${schema}`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  pool.on('error', () => {
    /* idle client errors surface on the next query; never crash the process */
  });
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  return wrapDatabase(db, { engine: 'postgres', supportsReturning: true, ilike: 'ilike' }, schema);
}

/** Drops a schema made by createPostgresDatabase({ schema }) — for tests. */
export async function dropPostgresSchema(url: string, schema: string): Promise<void> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}
