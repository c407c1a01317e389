import type { Kysely } from 'kysely';

/**
 * Training service tables: jobs (one row per training job, all attempts), the worker's events
 * (for live views and post-mortems), per-epoch metrics, and hyper-parameter studies with their trials.
 * JSON columns are text; times are epoch milliseconds.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('training_jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('dataset_version', 'text')
    .addColumn('dataset_dir', 'text')
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('input_size', 'integer')
    .addColumn('experiment', 'text', (c) => c.notNull())
    .addColumn('request', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('queue_job_id', 'text')
    .addColumn('worker_host', 'text')
    .addColumn('worker_pid', 'integer')
    .addColumn('heartbeat_at', 'bigint')
    .addColumn('progress', 'text')
    .addColumn('current', 'text')
    .addColumn('info', 'text')
    .addColumn('last_checkpoint', 'text')
    .addColumn('artifacts', 'text')
    .addColumn('metrics', 'text')
    .addColumn('test_metrics', 'text')
    .addColumn('parity', 'text')
    .addColumn('threshold', 'double precision')
    .addColumn('best_epoch', 'integer')
    .addColumn('best_val_auc', 'double precision')
    .addColumn('images_per_sec', 'double precision')
    .addColumn('run_id', 'text')
    .addColumn('registered', 'text')
    .addColumn('error', 'text')
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('attempt_started_at', 'bigint')
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema.createIndex('training_jobs_state').on('training_jobs').columns(['state', 'created_at']).execute();
  await db.schema.createIndex('training_jobs_created').on('training_jobs').columns(['created_at', 'id']).execute();

  await db.schema
    .createTable('training_events')
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('time', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('training_events_pk', ['owner_id', 'seq'])
    .execute();

  await db.schema
    .createTable('training_epochs')
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('epoch', 'integer', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('metrics', 'text', (c) => c.notNull())
    .addColumn('time', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('training_epochs_pk', ['job_id', 'epoch'])
    .execute();

  await db.schema
    .createTable('training_studies')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('dataset_version', 'text')
    .addColumn('dataset_dir', 'text')
    .addColumn('experiment', 'text', (c) => c.notNull())
    .addColumn('request', 'text', (c) => c.notNull())
    .addColumn('queue_job_id', 'text')
    .addColumn('worker_host', 'text')
    .addColumn('worker_pid', 'integer')
    .addColumn('heartbeat_at', 'bigint')
    .addColumn('best', 'text')
    .addColumn('error', 'text')
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('started_at', 'bigint')
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema.createIndex('training_studies_created').on('training_studies').columns(['created_at', 'id']).execute();

  await db.schema
    .createTable('training_trials')
    .addColumn('study_id', 'text', (c) => c.notNull())
    .addColumn('trial', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('value', 'double precision')
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('history', 'text', (c) => c.notNull())
    .addColumn('pruned_epoch', 'integer')
    .addColumn('best_epoch', 'integer')
    .addColumn('metrics', 'text')
    .addColumn('run_id', 'text')
    .addColumn('error', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('training_trials_pk', ['study_id', 'trial'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['training_trials', 'training_studies', 'training_epochs', 'training_events', 'training_jobs']) {
    await db.schema.dropTable(table).execute();
  }
}
