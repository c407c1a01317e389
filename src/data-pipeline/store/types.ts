/** Domain types shared by the data pipeline stores and services. */

export const CLASSES = ['NORMAL', 'PNEUMONIA'] as const;
export type ClassLabel = (typeof CLASSES)[number];
export const LABELS = ['NORMAL', 'PNEUMONIA', 'unlabelled'] as const;
export type Label = (typeof LABELS)[number];
export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

/** Where an image's patient id came from. */
export type PatientSource = 'given' | 'filename' | 'dicom' | 'none';

export function isLabel(value: unknown): value is Label {
  return typeof value === 'string' && (LABELS as readonly string[]).includes(value);
}

export function isSplit(value: unknown): value is Split {
  return typeof value === 'string' && (SPLITS as readonly string[]).includes(value);
}

/** One stored image: metadata of the bytes kept in the object store under `objectKey`. */
export interface ImageRecord {
  /** sha256 of the stored bytes (for DICOM: of the anonymised file). */
  hash: string;
  objectKey: string;
  sizeBytes: number;
  /** File name as first ingested (no directories). */
  sourceName: string;
  label: Label;
  patientId: string | null;
  patientSource: PatientSource;
  /** Split recorded at ingest (folder layout or upload field), if any. */
  split: Split | null;
  format: 'png' | 'jpeg' | 'dicom';
  modality: string | null;
  width: number;
  height: number;
  bitDepth: number;
  photometric: string | null;
  stats: unknown;
  /** 64-bit perceptual hash, 16 hex digits. */
  phash: string;
  qualityFlags: string[];
  ingestedAt: number;
  ingestedBy: string;
}

/** One sighting of an image: every ingest of the same bytes under another name or label adds one. */
export interface ImageSource {
  hash: string;
  sourceName: string;
  label: Label;
  patientId: string | null;
  split: Split | null;
  ingestedAt: number;
}

export type { Page, PageRequest } from '../../core/db/page.js';

/** Image counts per split per class. */
export type SplitCounts = Record<Split, Record<ClassLabel, number>>;
