import type { Kysely } from 'kysely';

/**
 * Cluster-wide serving state of the deployment service: the loads an operator asked for
 * (`POST /models/load` through the registry: a version or an alias, default or not) as desired
 * state every replica converges to, and each replica's heartbeat with what it serves.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('deployment_loads')
    .addColumn('model_name', 'text', (c) => c.notNull())
    .addColumn('ref', 'text', (c) => c.notNull())
    .addColumn('ref_kind', 'text', (c) => c.notNull())
    .addColumn('make_default', 'integer', (c) => c.notNull())
    .addColumn('batching', 'text')
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('deployment_loads_pk', ['model_name', 'ref'])
    .execute();
  await db.schema
    .createTable('deployment_replicas')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('serving', 'text', (c) => c.notNull())
    .addColumn('problems', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('deployment_replicas').execute();
  await db.schema.dropTable('deployment_loads').execute();
}
