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
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: conn }) });
  return wrapDatabase(db, { engine: 'sqlite', supportsReturning: true, ilike: 'like' });
}
