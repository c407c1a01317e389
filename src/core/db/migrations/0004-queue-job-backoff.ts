import type { Kysely } from 'kysely';

/** Retry backoff for queue jobs: the base delay a job was added with, and when a retry is due. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('queue_jobs').addColumn('backoff_ms', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('queue_jobs').addColumn('run_after', 'bigint').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('queue_jobs').dropColumn('run_after').execute();
  await db.schema.alterTable('queue_jobs').dropColumn('backoff_ms').execute();
}
