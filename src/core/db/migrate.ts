import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import type { Database } from './database.js';
import { withClusterLock } from './cluster-lock.js';
import { MIGRATIONS } from './migrations/index.js';

class StaticMigrationProvider implements MigrationProvider {
  constructor(private readonly migrations: Record<string, Migration>) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.migrations;
  }
}

/**
 * Applies every pending migration (the same files for SQLite and PostgreSQL). Service migrations
 * are numbered in ranges (0100 data, 0200 training, …) so they can be added independently.
 * On PostgreSQL under a cluster-wide advisory lock: replicas booting together on an empty database
 * run each migration once (the others wait, then find nothing pending).
 */
export function migrateToLatest(database: Database): Promise<string[]> {
  return withClusterLock(database, 'migrations', () => migrate(database));
}

/** Attempts when introspection trips over another schema dropped mid-query. */
const INTROSPECTION_ATTEMPTS = 4;

async function migrate(database: Database): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrateOnce(database);
    } catch (err) {
      // Kysely's migrator introspects every schema of the database (pg_get_serial_sequence on each
      // table): when another installation's schema is dropped during that query, PostgreSQL answers
      // "schema … does not exist" (3F000) for a schema that is not ours. Nothing was applied: retry.
      const other = /schema "([^"]+)" does not exist/.exec((err as Error).message ?? '');
      if (!other || other[1] === database.schema || attempt >= INTROSPECTION_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

async function migrateOnce(database: Database): Promise<string[]> {
  const migrator = new Migrator({
    db: database.db,
    provider: new StaticMigrationProvider(MIGRATIONS),
    allowUnorderedMigrations: true,
    // Kysely finds its bookkeeping tables by introspecting every schema; name ours so that runs in
    // other schemas of the same database (parallel test suites) are not mistaken for this one's.
    ...(database.schema ? { migrationTableSchema: database.schema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration '${failed}' failed: ${(error as Error).message ?? String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
