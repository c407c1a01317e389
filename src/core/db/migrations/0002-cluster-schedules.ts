import type { Kysely } from 'kysely';

/** When each once-per-cluster job last ran (see ClusterSchedule). */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('cluster_schedules')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('last_run', 'bigint', (c) => c.notNull())
    .addColumn('holder', 'text')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('cluster_schedules').execute();
}
