import type { Kysely } from 'kysely';

/**
 * Data pipeline tables: one row per stored image (keyed by the sha256 of the stored bytes), every
 * sighting of an image (file name, label, patient, split as given at ingest), dataset versions for
 * listing (the manifest itself lives in the object store), and installation settings such as the
 * patient-id salt.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('data_images')
    .addColumn('hash', 'text', (c) => c.primaryKey())
    .addColumn('object_key', 'text', (c) => c.notNull())
    .addColumn('size_bytes', 'bigint', (c) => c.notNull())
    .addColumn('source_name', 'text', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('patient_id', 'text')
    .addColumn('patient_source', 'text', (c) => c.notNull())
    .addColumn('split', 'text')
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('modality', 'text')
    .addColumn('width', 'integer', (c) => c.notNull())
    .addColumn('height', 'integer', (c) => c.notNull())
    .addColumn('bit_depth', 'integer', (c) => c.notNull())
    .addColumn('photometric', 'text')
    .addColumn('stats', 'text', (c) => c.notNull())
    .addColumn('phash', 'text', (c) => c.notNull())
    .addColumn('quality_flags', 'text', (c) => c.notNull())
    .addColumn('ingested_at', 'bigint', (c) => c.notNull())
    .addColumn('ingested_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('data_images_label').on('data_images').columns(['label', 'hash']).execute();
  await db.schema.createIndex('data_images_patient').on('data_images').column('patient_id').execute();
  await db.schema.createIndex('data_images_ingested').on('data_images').columns(['ingested_at', 'hash']).execute();

  await db.schema
    .createTable('data_image_sources')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('source_name', 'text', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('patient_id', 'text')
    .addColumn('split', 'text')
    .addColumn('ingested_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('data_image_sources_unique')
    .on('data_image_sources')
    .columns(['hash', 'label', 'source_name'])
    .unique()
    .execute();

  await db.schema
    .createTable('data_versions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('manifest_key', 'text', (c) => c.notNull())
    .addColumn('seed', 'bigint', (c) => c.notNull())
    .addColumn('preprocessing_hash', 'text', (c) => c.notNull())
    .addColumn('item_count', 'integer', (c) => c.notNull())
    .addColumn('counts', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('data_versions_created').on('data_versions').columns(['created_at', 'id']).execute();

  await db.schema
    .createTable('data_settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('data_settings').execute();
  await db.schema.dropTable('data_versions').execute();
  await db.schema.dropTable('data_image_sources').execute();
  await db.schema.dropTable('data_images').execute();
}
