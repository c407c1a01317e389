import { spawn } from 'node:child_process';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { wrapDatabase, type Database, type SnapshotInfo } from './database.js';

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
  // pg listens for errors only on idle clients: a client checked out between two statements (a
  // transaction) whose connection ends (PostgreSQL restarted) emits 'error' with no listener and
  // would crash the process. The next statement on it fails instead, and the pool drops it.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- see Database.db
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  return wrapDatabase(db, { engine: 'postgres', supportsReturning: true, ilike: 'ilike' }, schema, (target) => pgSnapshot(db, url, schema, target));
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

/** The PostgreSQL client tools (Debian's postgresql-client): XRAY_PG_BIN, else PATH. */
export function pgTool(name: 'pg_dump' | 'pg_restore'): string {
  const dir = process.env.XRAY_PG_BIN;
  return dir ? `${dir.replace(/\/+$/, '')}/${name}` : name;
}

/** Runs a PostgreSQL client tool; rejects with its stderr. */
export function runPgTool(name: 'pg_dump' | 'pg_restore', args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(pgTool(name), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new Error(`${name} could not run (${e.message}); install postgresql-client or set XRAY_PG_BIN`)));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited with ${code}: ${err.trim().slice(0, 2000)}`))));
  });
}

/**
 * `pg_dump -Fc` of the database (or one schema of it) into `file`, taken in a snapshot exported
 * from a repeatable-read transaction — the same one the table counts are read in.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see Database.db
async function pgSnapshot(db: Kysely<any>, url: string, schema: string | undefined, file: string): Promise<SnapshotInfo> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const snap = (await sql<{ id: string }>`select pg_export_snapshot() as id`.execute(trx)).rows[0]!.id;
      const tables = (
        await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE' order by 1`.execute(trx)
      ).rows.map((r) => r.name);
      const counts: Record<string, number> = {};
      for (const t of tables) counts[t] = Number((await sql<{ n: number }>`select count(*) as n from ${sql.id(t)}`.execute(trx)).rows[0]!.n);
      await runPgTool('pg_dump', ['--format=custom', '--no-owner', '--no-privileges', `--snapshot=${snap}`, ...(schema ? ['--schema', schema] : []), '--file', file, '--dbname', url]);
      return { tables: counts };
    });
}
