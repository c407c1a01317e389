import type { Kysely } from 'kysely';

/**
 * Deployment service: one row per prediction (read by the monitoring service through
 * src/deployment/store/prediction-store.ts) and the A/B / shadow routing table per model.
 * Heatmap pictures live in the object store, never in rows.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('predictions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('time', 'bigint', (c) => c.notNull())
    .addColumn('model_name', 'text', (c) => c.notNull())
    .addColumn('model_version', 'text', (c) => c.notNull())
    .addColumn('variant', 'text', (c) => c.notNull())
    .addColumn('shadow', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('probability', 'double precision', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('threshold', 'double precision', (c) => c.notNull())
    .addColumn('image_sha256', 'text', (c) => c.notNull())
    .addColumn('heatmap_method', 'text')
    .addColumn('stats', 'text')
    .addColumn('embedding', 'text')
    .addColumn('latency_ms', 'double precision', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('cached', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('predictions_time').on('predictions').column('time').execute();
  await db.schema.createIndex('predictions_model_time').on('predictions').columns(['model_name', 'model_version', 'time']).execute();
  await db.schema.createIndex('predictions_image').on('predictions').column('image_sha256').execute();

  await db.schema
    .createTable('deployment_routing')
    .addColumn('model_name', 'text', (c) => c.primaryKey())
    .addColumn('config', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('deployment_routing').execute();
  await db.schema.dropTable('predictions').execute();
}
