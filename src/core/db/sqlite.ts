import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Kysely, SqliteDialect } from 'kysely';
import { wrapDatabase, type Database } from './database.js';

/** SQLite through better-sqlite3 (embedded default): WAL, foreign keys on, busy timeout. */
export async function createSqliteDatabase(file: string): Promise<Database> {
  const { default: BetterSqlite3 } = await import('better-sqlite3');
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const conn = new BetterSqlite3(file);
  conn.pragma('journal_mode = WAL');
  conn.pragma('foreign_keys = ON');
  conn.pragma('busy_timeout = 5000');
  conn.pragma('synchronous = NORMAL');
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- see Database.db
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: conn }) });
  return wrapDatabase(db, { engine: 'sqlite', supportsReturning: true, ilike: 'like' }, undefined, async (target) => {
    await conn.backup(target);
    return { tables: sqliteTableCounts(new BetterSqlite3(target, { readonly: true })) };
  });
}

/** Rows per user table of an open SQLite file (closes it). */
export function sqliteTableCounts(conn: import('better-sqlite3').Database): Record<string, number> {
  try {
    const names = conn.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name").all() as { name: string }[];
    return Object.fromEntries(names.map(({ name }) => [name, Number((conn.prepare(`select count(*) as n from "${name.replace(/"/g, '""')}"`).get() as { n: number }).n)]));
  } finally {
    conn.close();
  }
}
