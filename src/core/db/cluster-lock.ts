import { sql } from 'kysely';
import type { Database } from './database.js';

/**
 * Runs `fn` while holding a cluster-wide lock named `name`: on PostgreSQL a session advisory lock
 * (`pg_advisory_lock`) on one connection held for the duration — replicas booting together wait
 * for each other, and a replica that dies releases it with its connection. `fn` uses the pool's
 * other connections as usual. On SQLite (one host, embedded) `fn` just runs.
 * The lock is per database and schema, so isolated test schemas do not wait for each other.
 */
export async function withClusterLock<T>(database: Database, name: string, fn: () => Promise<T>): Promise<T> {
  if (database.capabilities.engine !== 'postgres') return fn();
  const key = `xray:${database.schema ?? ''}:${name}`;
  return database.db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(hashtext(${key}))`.execute(conn);
    try {
      return await fn();
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${key}))`.execute(conn).catch(() => {});
    }
  });
}
