import type { Kysely } from 'kysely';

/**
 * Monitoring service: drift references and reports, ground-truth feedback, alerts, notification
 * channels and undeliverable notifications (dead letters). Reference data (stats rows, embeddings,
 * probabilities) lives in the object store; rows hold only its key and a summary.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('drift_references')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('model_name', 'text', (c) => c.notNull())
    .addColumn('model_version', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('object_key', 'text', (c) => c.notNull())
    .addColumn('n_rows', 'integer', (c) => c.notNull())
    .addColumn('n_embeddings', 'integer', (c) => c.notNull())
    .addColumn('features', 'text', (c) => c.notNull())
    .addColumn('window_since', 'bigint')
    .addColumn('window_until', 'bigint')
    .addColumn('summary', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('drift_references_model').on('drift_references').columns(['model_name', 'model_version', 'created_at']).execute();

  await db.schema
    .createTable('drift_reports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('model_name', 'text', (c) => c.notNull())
    .addColumn('model_version', 'text', (c) => c.notNull())
    .addColumn('reference_id', 'text')
    .addColumn('trigger', 'text', (c) => c.notNull())
    .addColumn('window_since', 'bigint')
    .addColumn('window_until', 'bigint')
    .addColumn('window_last_n', 'integer')
    .addColumn('n_reference', 'integer', (c) => c.notNull())
    .addColumn('n_current', 'integer', (c) => c.notNull())
    .addColumn('verdict', 'text', (c) => c.notNull())
    .addColumn('drifted_detectors', 'text', (c) => c.notNull())
    .addColumn('report', 'text', (c) => c.notNull())
    .addColumn('duration_ms', 'double precision', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('drift_reports_model').on('drift_reports').columns(['model_name', 'model_version', 'created_at']).execute();
  await db.schema.createIndex('drift_reports_created').on('drift_reports').column('created_at').execute();

  await db.schema
    .createTable('prediction_feedback')
    .addColumn('prediction_id', 'text', (c) => c.primaryKey())
    .addColumn('model_name', 'text', (c) => c.notNull())
    .addColumn('model_version', 'text', (c) => c.notNull())
    .addColumn('label', 'integer', (c) => c.notNull())
    .addColumn('probability', 'double precision', (c) => c.notNull())
    .addColumn('threshold', 'double precision', (c) => c.notNull())
    .addColumn('predicted_at', 'bigint', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('prediction_feedback_model').on('prediction_feedback').columns(['model_name', 'model_version', 'created_at']).execute();

  await db.schema
    .createTable('alerts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('model_name', 'text', (c) => c.notNull())
    .addColumn('model_version', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('summary', 'text', (c) => c.notNull())
    .addColumn('details', 'text')
    .addColumn('occurrences', 'integer', (c) => c.notNull())
    .addColumn('first_seen', 'bigint', (c) => c.notNull())
    .addColumn('last_seen', 'bigint', (c) => c.notNull())
    .addColumn('acknowledged_by', 'text')
    .addColumn('acknowledged_at', 'bigint')
    .addColumn('resolved_by', 'text')
    .addColumn('resolved_at', 'bigint')
    .execute();
  await db.schema.createIndex('alerts_fingerprint').on('alerts').columns(['fingerprint', 'status']).execute();
  await db.schema.createIndex('alerts_status').on('alerts').columns(['status', 'last_seen']).execute();

  await db.schema
    .createTable('alert_channels')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('settings', 'text', (c) => c.notNull())
    .addColumn('min_severity', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('alert_dead_letters')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('alert_id', 'text', (c) => c.notNull())
    .addColumn('channel_id', 'text')
    .addColumn('channel_name', 'text', (c) => c.notNull())
    .addColumn('channel_kind', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('last_error', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('alert_dead_letters_created').on('alert_dead_letters').column('created_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['alert_dead_letters', 'alert_channels', 'alerts', 'prediction_feedback', 'drift_reports', 'drift_references']) {
    await db.schema.dropTable(table).execute();
  }
}
