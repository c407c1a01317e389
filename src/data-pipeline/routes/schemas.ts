/**
 * Wire schemas of the data pipeline API (zod): used by the routes for validation and OpenAPI, and
 * by the CLI for the shapes it sends and reads, and by the web UI, which infers its types from
 * them (keep this module's imports free of Node).
 */
import { z } from 'zod';
import { PreprocessSpec } from '../../core/imaging/preprocess-spec.js';
import { augmentationOverridesSchema } from '../../core/ml/augmentation.js';
import { MAX_NEAR_THRESHOLD } from '../service/validation-report.js';
import { CLASSES, LABELS, SPLITS } from '../store/types.js';

export const labelSchema = z.enum(LABELS);
export const classSchema = z.enum(CLASSES);
export const splitSchema = z.enum(SPLITS);
export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 hex digest (64 lowercase hex digits)');

const classCounts = z.object({ NORMAL: z.number().int(), PNEUMONIA: z.number().int() });
export const splitCountsSchema = z.object({ train: classCounts, val: classCounts, test: classCounts });

export const ingestResultSchema = z.object({
  file: z.string(),
  status: z.enum(['ingested', 'duplicate', 'rejected']),
  hash: z.string().optional(),
  format: z.enum(['png', 'jpeg', 'dicom']).optional(),
  label: labelSchema.optional(),
  patient_id: z.string().nullable().optional(),
  width: z.number().int().optional(),
  height: z.number().int().optional(),
  quality_flags: z.array(z.string()).optional(),
  warnings: z.array(z.string()).optional(),
  label_conflict_with: labelSchema.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const ingestResponseSchema = z.object({
  ingested: z.number().int(),
  duplicates: z.number().int(),
  rejected: z.number().int(),
  results: z.array(ingestResultSchema),
});

/** Query of a raw-body ingest (Content-Type image/png, image/jpeg, application/dicom). */
export const ingestQuerySchema = z.object({
  label: labelSchema.optional(),
  patient_id: z.string().min(1).max(128).optional(),
  split: splitSchema.optional(),
  filename: z.string().min(1).max(255).optional(),
});

export const importRequestSchema = z.object({
  path: z.string().min(1).max(4096).describe('Server-side folder under the import root (XRAY_IMPORT_ROOT), absolute or relative to it'),
  label: labelSchema.optional().describe('Force this label on every file (files directly in the folder are then taken too)'),
  split_from_folders: z.boolean().default(false).describe('Record train/ val/ test/ folder names as the images\' split'),
});

export const importRejectionSchema = z.object({ file: z.string(), code: z.string(), message: z.string() });

export const importStatusSchema = z.object({
  job_id: z.string(),
  state: z.enum(['waiting', 'active', 'completed', 'failed']),
  path: z.string(),
  error: z.string().nullable(),
  created_at: z.number(),
  updated_at: z.number(),
  total: z.number().int(),
  done: z.number().int(),
  ingested: z.number().int(),
  duplicates: z.number().int(),
  rejected: z.number().int(),
  label_conflicts: z.number().int(),
  rejections: z.array(importRejectionSchema),
});

export const imageSchema = z.object({
  hash: z.string(),
  source_name: z.string(),
  label: labelSchema,
  patient_id: z.string().nullable(),
  patient_source: z.enum(['given', 'filename', 'dicom', 'none']),
  split: splitSchema.nullable(),
  format: z.enum(['png', 'jpeg', 'dicom']),
  modality: z.string().nullable(),
  width: z.number().int(),
  height: z.number().int(),
  bit_depth: z.number().int(),
  photometric: z.string().nullable(),
  size_bytes: z.number().int(),
  stats: z.record(z.string(), z.number()).nullable(),
  phash: z.string(),
  quality_flags: z.array(z.string()),
  ingested_at: z.number(),
  ingested_by: z.string(),
});

export const createVersionSchema = z.object({
  name: z.string().min(1).max(200),
  val_fraction: z.number().min(0).max(0.9).default(0.15),
  test_fraction: z.number().min(0).max(0.9).default(0),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(42),
  preprocessing: PreprocessSpec.partial().default({}),
  augmentation: augmentationOverridesSchema.default({}),
  labels: z.array(classSchema).min(1).optional().describe('Classes to include (default both)'),
  exclude_quality_flags: z.array(z.string().max(64)).max(20).optional().describe('Leave out images with any of these quality flags'),
  use_recorded_splits: z.boolean().default(false).describe('Keep splits recorded at ingest (by patient majority) where present'),
  test_by: z
    .enum(['random', 'period', 'names'])
    .default('random')
    .describe(
      'How the test split is held out: random (seeded, like val); period (per class, the patients whose file names come last in natural order — an acquisition-period proxy); ' +
        'names (every patient with a file name containing one of test_names_containing — leave a file family out; a class whose family is smaller than test_fraction is topped up with seeded patients). Shift evidence from the training data itself.',
    ),
  test_names_containing: z.array(z.string().min(1).max(100)).max(20).optional().describe("File-name substrings for test_by 'names' (case-sensitive)"),
});

export const versionSchema = z.object({
  id: z.string(),
  name: z.string(),
  created_at: z.number(),
  created_by: z.string(),
  seed: z.number(),
  preprocessing_hash: z.string(),
  item_count: z.number().int(),
  counts: splitCountsSchema,
});

export const createVersionResponseSchema = z.object({
  version: versionSchema,
  created: z.boolean(),
  excluded: z.record(z.string(), z.number()),
});

export const manifestItemSchema = z.object({ hash: z.string(), label: classSchema, patient: z.string().nullable(), split: splitSchema });

export const manifestSchema = z.object({
  schema: z.string(),
  classes: z.array(classSchema),
  seed: z.number(),
  split: z.object({
    algorithm: z.string(),
    val_fraction: z.number(),
    test_fraction: z.number(),
    use_recorded_splits: z.boolean(),
    test_by: z.enum(['period', 'names']).optional(),
    test_names_containing: z.array(z.string()).optional(),
  }),
  filters: z.object({ labels: z.array(classSchema), exclude_quality_flags: z.array(z.string()) }),
  preprocessing: z.looseObject({ hash: z.string() }),
  augmentation: z.looseObject({}),
  items: z.array(manifestItemSchema),
});

export const versionDetailSchema = versionSchema.extend({ manifest: manifestSchema.optional() });

export const exportManifestSchema = z.object({
  version_id: z.string(),
  classes: z.array(classSchema),
  preprocessing: z.looseObject({ hash: z.string() }),
  augmentation: z.looseObject({}),
  items: z.array(z.object({ hash: z.string(), file: z.string(), label: classSchema, split: splitSchema, patient: z.string().nullable() })),
});

const itemChange = z.object({ label: classSchema, patient: z.string().nullable(), split: splitSchema });
export const versionDiffSchema = z.object({
  a: z.string(),
  b: z.string(),
  added: z.array(manifestItemSchema),
  removed: z.array(manifestItemSchema),
  changed: z.array(z.object({ hash: z.string(), from: itemChange, to: itemChange })),
  unchanged: z.number().int(),
  settings_changed: z.array(z.string()),
});

export const exportRequestSchema = z.object({
  dir: z.string().min(1).max(600).describe('Folder name under XRAY_HOME/exports'),
});

export const exportResultSchema = z.object({
  version_id: z.string(),
  dir: z.string(),
  manifest: z.string(),
  items: z.number().int(),
  preprocessed: z.number().int(),
});

export const validateQuerySchema = z.object({
  dataset: z.string().default('all').describe("'all' or a dataset version id"),
  threshold: z.coerce.number().int().min(0).max(MAX_NEAR_THRESHOLD).optional().describe('pHash distance (bits of 64) for near-duplicates'),
});

const nearDupSchema = z.object({
  a: z.string(),
  b: z.string(),
  distance: z.number().int(),
  labels: z.tuple([labelSchema, labelSchema]),
  splits: z.tuple([splitSchema.nullable(), splitSchema.nullable()]),
  cross_class: z.boolean(),
  cross_split: z.boolean(),
});

export const validationReportSchema = z.object({
  id: z.string(),
  dataset: z.string(),
  created_at: z.number(),
  near_duplicate_threshold: z.number().int(),
  ok: z.boolean(),
  summary: z.object({
    images: z.number().int(),
    by_label: z.record(z.string(), z.number()),
    by_split: z.record(z.string(), z.number()),
    quality_flagged: z.number().int(),
    quality_flags: z.record(z.string(), z.number()),
    label_conflicts: z.number().int(),
    near_duplicates: z.number().int(),
    near_duplicates_cross_class: z.number().int(),
    patient_leaks: z.number().int(),
    near_duplicate_leaks: z.number().int(),
  }),
  quality: z.array(z.object({ hash: z.string(), file: z.string(), flags: z.array(z.string()) })),
  label_conflicts: z.array(z.object({ hash: z.string(), labels: z.array(labelSchema) })),
  near_duplicates: z.array(nearDupSchema),
  leakage: z.object({
    patients: z.array(z.object({ patient: z.string(), splits: z.record(z.string(), z.number()) })),
    near_duplicates: z.array(nearDupSchema),
  }),
  report_key: z.string(),
});

/** Preprocessing parameters given as query (raw body) or multipart fields. */
export const preprocessQuerySchema = z.object({
  size: z.coerce.number().int().min(16).max(2048).optional(),
  mode: z.enum(['letterbox', 'crop', 'squash']).optional(),
  pad: z.coerce.number().int().min(0).max(255).optional(),
});

/** A DICOM JSON (PS3.18 Annex F) data set: attributes by 8-hex-digit tag. */
export const dicomJsonSchema = z
  .record(z.string(), z.object({ vr: z.string(), Value: z.array(z.any()).optional() }))
  .describe('DICOM JSON Model (PS3.18 F): attributes by tag');

export const qidoQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).optional().describe('Most results returned (default 100)'),
  offset: z.coerce.number().int().min(0).max(1_000_000).optional().describe('Results skipped first'),
  StudyInstanceUID: z.string().max(64).optional(),
  '0020000D': z.string().max(64).optional(),
  SeriesInstanceUID: z.string().max(64).optional(),
  '0020000E': z.string().max(64).optional(),
  SOPInstanceUID: z.string().max(64).optional(),
  '00080018': z.string().max(64).optional(),
  Modality: z.string().max(16).optional(),
  '00080060': z.string().max(16).optional(),
  includefield: z.union([z.string(), z.array(z.string())]).optional().describe('Accepted; the attributes returned are fixed'),
  fuzzymatching: z.string().optional(),
});

const jobStateSchema = z.enum(['waiting', 'active', 'completed', 'failed']);

/** Auto-predict jobs on this process's queue, by state (GET /dicom/auto-predict). */
export const autoPredictStatusSchema = z.object({
  model: z.string(),
  destination: z.string(),
  attempts: z.number().int(),
  backoff_ms: z.number().int(),
  /** Jobs whose memory-only context this process holds. */
  pending: z.number().int(),
  jobs: z.record(jobStateSchema, z.number().int()),
});

/** One auto-predict job (GET /dicom/auto-predict/jobs/:id): no identifier, only the image hash. */
export const autoPredictJobSchema = z.object({
  id: z.string(),
  image: z.string(),
  channel: z.enum(['stow-rs', 'c-store']),
  state: jobStateSchema,
  attempts: z.number().int(),
  retry_at: z.string().nullable(),
  error: z.string().nullable(),
  result: z.unknown(),
  created_at: z.string(),
  updated_at: z.string(),
});
