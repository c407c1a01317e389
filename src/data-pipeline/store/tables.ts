/** Row shapes of the data pipeline tables (migration 0100-data-pipeline). */

export interface DataImagesTable {
  hash: string;
  object_key: string;
  size_bytes: number;
  source_name: string;
  label: string;
  patient_id: string | null;
  patient_source: string;
  split: string | null;
  format: string;
  modality: string | null;
  width: number;
  height: number;
  bit_depth: number;
  photometric: string | null;
  /** JSON text. */
  stats: string;
  phash: string;
  /** JSON text: string[]. */
  quality_flags: string;
  ingested_at: number;
  ingested_by: string;
}

export interface DataImageSourcesTable {
  id: string;
  hash: string;
  source_name: string;
  label: string;
  patient_id: string | null;
  split: string | null;
  ingested_at: number;
}

export interface DataVersionsTable {
  id: string;
  name: string;
  manifest_key: string;
  seed: number;
  preprocessing_hash: string;
  item_count: number;
  /** JSON text: counts per split per class. */
  counts: string;
  created_at: number;
  created_by: string;
}

export interface DataSettingsTable {
  key: string;
  value: string;
}

/** Migration 0101-dicom-instances: de-identified UIDs of stored DICOM images (QIDO-RS). */
export interface DataDicomInstancesTable {
  hash: string;
  study_uid: string;
  series_uid: string;
  sop_instance_uid: string;
  sop_class_uid: string;
  modality: string | null;
  received_at: number;
}

export interface DataPipelineTables {
  data_images: DataImagesTable;
  data_image_sources: DataImageSourcesTable;
  data_versions: DataVersionsTable;
  data_settings: DataSettingsTable;
  data_dicom_instances: DataDicomInstancesTable;
}
