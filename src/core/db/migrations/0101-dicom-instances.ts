import type { Kysely } from 'kysely';

/**
 * The DICOM identity of stored images (de-identified UIDs only: the values the stored file
 * carries), so the data pipeline can answer QIDO-RS (studies / series / instances it holds).
 * One row per stored image (keyed by its hash); images ingested before this table have none.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('data_dicom_instances')
    .addColumn('hash', 'text', (c) => c.primaryKey())
    .addColumn('study_uid', 'text', (c) => c.notNull())
    .addColumn('series_uid', 'text', (c) => c.notNull())
    .addColumn('sop_instance_uid', 'text', (c) => c.notNull())
    .addColumn('sop_class_uid', 'text', (c) => c.notNull())
    .addColumn('modality', 'text')
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('data_dicom_instances_uids')
    .on('data_dicom_instances')
    .columns(['study_uid', 'series_uid', 'sop_instance_uid'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('data_dicom_instances').execute();
}
