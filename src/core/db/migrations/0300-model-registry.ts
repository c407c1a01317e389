import type { Kysely } from 'kysely';

/**
 * Model registry service: experiment tracking (MLflow's entities) and the model registry.
 *
 * `latest_metrics` keeps one row per (run, key) with the value at the highest step, denormalised
 * with the run's experiment, so `runs/search` filters and orders by a metric through an index
 * instead of scanning `metric_history`. Bytes (artifacts, ONNX files) live in the object store;
 * rows only hold their content-addressed keys.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('experiments')
    .addColumn('experiment_id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('artifact_location', 'text', (c) => c.notNull())
    .addColumn('lifecycle_stage', 'text', (c) => c.notNull())
    .addColumn('creation_time', 'bigint', (c) => c.notNull())
    .addColumn('last_update_time', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('experiment_tags')
    .addColumn('experiment_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('experiment_tags_pk', ['experiment_id', 'key'])
    .execute();

  await db.schema
    .createTable('runs')
    .addColumn('run_id', 'text', (c) => c.primaryKey())
    .addColumn('experiment_id', 'text', (c) => c.notNull())
    .addColumn('run_name', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('start_time', 'bigint', (c) => c.notNull())
    .addColumn('end_time', 'bigint')
    .addColumn('artifact_uri', 'text', (c) => c.notNull())
    .addColumn('lifecycle_stage', 'text', (c) => c.notNull())
    .addColumn('deleted_time', 'bigint')
    .execute();
  await db.schema.createIndex('runs_experiment_start').on('runs').columns(['experiment_id', 'lifecycle_stage', 'start_time']).execute();
  await db.schema
    .createTable('run_params')
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_params_pk', ['run_id', 'key'])
    .execute();
  await db.schema.createIndex('run_params_key_value').on('run_params').columns(['key', 'value']).execute();
  await db.schema
    .createTable('run_tags')
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_tags_pk', ['run_id', 'key'])
    .execute();
  await db.schema.createIndex('run_tags_key_value').on('run_tags').columns(['key', 'value']).execute();
  await db.schema
    .createTable('metric_history')
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('step', 'bigint', (c) => c.notNull())
    .addColumn('timestamp', 'bigint', (c) => c.notNull())
    .addColumn('value', 'double precision', (c) => c.notNull())
    .addColumn('is_nan', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('metric_history_pk', ['run_id', 'key', 'step', 'timestamp', 'value', 'is_nan'])
    .execute();
  await db.schema
    .createTable('latest_metrics')
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('experiment_id', 'text', (c) => c.notNull())
    .addColumn('value', 'double precision', (c) => c.notNull())
    .addColumn('step', 'bigint', (c) => c.notNull())
    .addColumn('timestamp', 'bigint', (c) => c.notNull())
    .addColumn('is_nan', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('latest_metrics_pk', ['run_id', 'key'])
    .execute();
  await db.schema.createIndex('latest_metrics_key_value').on('latest_metrics').columns(['key', 'value']).execute();
  await db.schema.createIndex('latest_metrics_experiment_key_value').on('latest_metrics').columns(['experiment_id', 'key', 'value']).execute();
  await db.schema
    .createTable('run_inputs')
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('source_type', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('schema', 'text')
    .addColumn('profile', 'text')
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_inputs_pk', ['run_id', 'name', 'digest'])
    .execute();
  await db.schema.createIndex('run_inputs_name').on('run_inputs').columns(['name', 'digest']).execute();
  await db.schema
    .createTable('run_artifacts')
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('object_key', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_artifacts_pk', ['run_id', 'path'])
    .execute();
  await db.schema.createIndex('run_artifacts_object').on('run_artifacts').column('object_key').execute();

  await db.schema
    .createTable('registered_models')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('creation_timestamp', 'bigint', (c) => c.notNull())
    .addColumn('last_updated_timestamp', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('registered_model_tags')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('registered_model_tags_pk', ['name', 'key'])
    .execute();
  await db.schema
    .createTable('registered_model_aliases')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('alias', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('registered_model_aliases_pk', ['name', 'alias'])
    .execute();
  await db.schema
    .createTable('model_versions')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('creation_timestamp', 'bigint', (c) => c.notNull())
    .addColumn('last_updated_timestamp', 'bigint', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('current_stage', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text')
    .addColumn('run_link', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('status_message', 'text')
    .addColumn('deleted_at', 'bigint')
    .addColumn('onnx_key', 'text')
    .addColumn('onnx_sha256', 'text')
    .addColumn('onnx_bytes', 'bigint')
    .addColumn('input_name', 'text')
    .addColumn('input_size', 'integer')
    .addColumn('has_features', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('threshold', 'double precision')
    .addColumn('threshold_method', 'text')
    .addColumn('preprocessing', 'text')
    .addColumn('preprocessing_hash', 'text')
    .addColumn('dataset_version', 'text')
    .addColumn('code_version', 'text')
    .addColumn('parent_name', 'text')
    .addColumn('parent_version', 'integer')
    .addColumn('val_auc', 'double precision')
    .addColumn('metrics', 'text')
    .addColumn('metadata', 'text')
    .addColumn('gate', 'text')
    .addPrimaryKeyConstraint('model_versions_pk', ['name', 'version'])
    .execute();
  await db.schema.createIndex('model_versions_run').on('model_versions').column('run_id').execute();
  await db.schema.createIndex('model_versions_onnx').on('model_versions').column('onnx_sha256').execute();
  await db.schema
    .createTable('model_version_tags')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('model_version_tags_pk', ['name', 'version', 'key'])
    .execute();
  await db.schema
    .createTable('model_version_artifacts')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('object_key', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('model_version_artifacts_pk', ['name', 'version', 'path'])
    .execute();
  await db.schema.createIndex('model_version_artifacts_object').on('model_version_artifacts').column('object_key').execute();
  await db.schema
    .createTable('model_stage_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('from_stage', 'text', (c) => c.notNull())
    .addColumn('to_stage', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('forced', 'integer', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('verdict', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('model_stage_events_version').on('model_stage_events').columns(['name', 'version', 'created_at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'model_stage_events',
    'model_version_artifacts',
    'model_version_tags',
    'model_versions',
    'registered_model_aliases',
    'registered_model_tags',
    'registered_models',
    'run_artifacts',
    'run_inputs',
    'latest_metrics',
    'metric_history',
    'run_tags',
    'run_params',
    'runs',
    'experiment_tags',
    'experiments',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
