import type { z } from 'zod';
import { request, requestBlob } from './http.js';
import type {
  createVersionResponseSchema,
  createVersionSchema,
  importStatusSchema,
  manifestItemSchema,
  versionDetailSchema,
  versionDiffSchema,
  versionSchema,
} from '../../../src/data-pipeline/routes/schemas.js';
import type { NearDuplicateEntry, ValidationReport } from '../../../src/data-pipeline/service/validation-report.js';

/**
 * Client of the data pipeline. Response types are inferred from its route schemas
 * (src/data-pipeline/routes/schemas.ts); the validation report is its own document, shared too.
 */

export type DatasetVersion = z.infer<typeof versionSchema>;
export type SplitCounts = DatasetVersion['counts'];
export type SplitName = keyof SplitCounts;
export type ClassCounts = SplitCounts[SplitName];
export type ManifestItem = z.infer<typeof manifestItemSchema>;
export type ClassName = ManifestItem['label'];
export type DatasetVersionDetail = z.infer<typeof versionDetailSchema>;
export type ImportStatus = z.infer<typeof importStatusSchema>;
export type VersionDiff = z.infer<typeof versionDiffSchema>;
export type CreateVersionBody = z.input<typeof createVersionSchema>;
export type CreateVersionResponse = z.infer<typeof createVersionResponseSchema>;
export type { NearDuplicateEntry as NearDuplicate, ValidationReport };

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

export function createVersion(body: CreateVersionBody): Promise<CreateVersionResponse> {
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
