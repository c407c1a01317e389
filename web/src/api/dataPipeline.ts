import { request, requestBlob } from './http.js';

/** Client of the data pipeline (src/data-pipeline/routes/schemas.ts). */

export type ClassName = 'NORMAL' | 'PNEUMONIA';
export type SplitName = 'train' | 'val' | 'test';
export type ClassCounts = Record<ClassName, number>;
export type SplitCounts = Record<SplitName, ClassCounts>;

export interface DatasetVersion {
  id: string;
  name: string;
  created_at: number;
  created_by: string;
  seed: number;
  preprocessing_hash: string;
  item_count: number;
  counts: SplitCounts;
}

export interface ManifestItem {
  hash: string;
  label: ClassName;
  patient: string | null;
  split: SplitName;
}

export interface DatasetVersionDetail extends DatasetVersion {
  manifest?: {
    classes: ClassName[];
    seed: number;
    split: { algorithm: string; val_fraction: number; test_fraction: number; use_recorded_splits: boolean };
    preprocessing: Record<string, unknown> & { hash: string };
    augmentation: Record<string, unknown>;
    items: ManifestItem[];
  };
}

export interface ImportStatus {
  job_id: string;
  state: 'waiting' | 'active' | 'completed' | 'failed';
  path: string;
  error: string | null;
  created_at: number;
  updated_at: number;
  total: number;
  done: number;
  ingested: number;
  duplicates: number;
  rejected: number;
  label_conflicts: number;
  rejections: { file: string; code: string; message: string }[];
}

// The validation report is the data pipeline's own document: shared, not restated.
import type { ValidationReport } from '../../../src/data-pipeline/service/validation-report.js';
export type { NearDuplicateEntry as NearDuplicate, ValidationReport } from '../../../src/data-pipeline/service/validation-report.js';

export interface VersionDiff {
  a: string;
  b: string;
  added: ManifestItem[];
  removed: ManifestItem[];
  changed: { hash: string; from: Omit<ManifestItem, 'hash'>; to: Omit<ManifestItem, 'hash'> }[];
  unchanged: number;
  settings_changed: string[];
}

export interface CreateVersionBody {
  name: string;
  val_fraction?: number;
  test_fraction?: number;
  seed?: number;
}

export function startImport(body: { path: string; label?: ClassName; split_from_folders?: boolean }): Promise<{ job_id: string }> {
  return request('data-pipeline', '/import', { method: 'POST', json: body });
}

export function importStatus(jobId: string): Promise<ImportStatus> {
  return request('data-pipeline', `/import/${encodeURIComponent(jobId)}`);
}

export function listVersions(): Promise<{ items: DatasetVersion[]; next_page_token?: string }> {
  return request('data-pipeline', '/versions', { query: { page_size: 200 } });
}

export function getVersion(id: string, items = true): Promise<DatasetVersionDetail> {
  return request('data-pipeline', `/versions/${encodeURIComponent(id)}`, { query: { items } });
}

export function createVersion(body: CreateVersionBody): Promise<{ version: DatasetVersion; created: boolean; excluded: Record<string, number> }> {
  return request('data-pipeline', '/version/create', { method: 'POST', json: body });
}

export function diffVersions(a: string, b: string): Promise<VersionDiff> {
  return request('data-pipeline', `/versions/${encodeURIComponent(a)}/diff/${encodeURIComponent(b)}`);
}

export function validate(dataset: string): Promise<ValidationReport> {
  return request('data-pipeline', '/validate', { query: { dataset } });
}

export function imageCounts(): Promise<{ counts: Record<string, number> }> {
  return request('data-pipeline', '/images', { query: { page_size: 1 } });
}

/** A dataset item's preprocessed PNG (what the model sees). */
export function versionImage(versionId: string, hash: string): Promise<Blob> {
  return requestBlob('data-pipeline', `/versions/${encodeURIComponent(versionId)}/images/${encodeURIComponent(hash)}`);
}

/** Any upload (PNG, JPEG, DICOM) → the model-input PNG: the same pixels the heatmap is drawn over. */
export function preprocess(file: Blob, spec: { size?: number; mode?: string; pad?: number }, signal?: AbortSignal): Promise<Blob> {
  return requestBlob('data-pipeline', '/preprocess', { method: 'POST', body: file, query: spec, signal });
}
