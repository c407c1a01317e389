import { fileURLToPath } from 'node:url';
import { createSqliteDatabase } from './sqlite.js';
import { migrateToLatest } from './migrate.js';
import type { Database } from './database.js';

export type { Database, Capabilities, Engine } from './database.js';
export { migrateToLatest } from './migrate.js';

export interface OpenDatabaseOptions {
  /** PostgreSQL schema to use (tests isolate runs with it). */
  schema?: string;
  /** Run migrations (default true). */
  migrate?: boolean;
}

/**
 * Opens the relational store named by URL — `sqlite:<path>` | `sqlite::memory:` | `postgres://…` —
 * and runs the migrations. The only place that switches on the engine.
 */
export async function openDatabase(url: string, options: OpenDatabaseOptions = {}): Promise<Database> {
  let database: Database;
  if (url.startsWith('sqlite:')) {
    const target = url.slice('sqlite:'.length);
    const file = target.startsWith('//') ? fileURLToPath(`file:${target}`) : target;
    database = await createSqliteDatabase(file || ':memory:');
  } else if (url.startsWith('postgres:') || url.startsWith('postgresql:')) {
    const { createPostgresDatabase } = await import('./postgres.js');
    database = await createPostgresDatabase(url, { schema: options.schema });
  } else {
    throw new Error(`unknown database URL scheme in '${url}'; use sqlite:<path> or postgres://…`);
  }
  if (options.migrate !== false) {
    try {
      await migrateToLatest(database);
    } catch (err) {
      await database.close();
      throw err;
    }
  }
  return database;
}
