import type { Kysely } from 'kysely';

/**
 * The pid of the training service process running a job's or study's attempt. Replicas on one
 * host share pids, so a replica tells "its worker died with its service" (interrupted at once)
 * from "another live replica is still finishing it" (left alone) by this.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('training_jobs').addColumn('owner_pid', 'integer').execute();
  await db.schema.alterTable('training_studies').addColumn('owner_pid', 'integer').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('training_studies').dropColumn('owner_pid').execute();
  await db.schema.alterTable('training_jobs').dropColumn('owner_pid').execute();
}
