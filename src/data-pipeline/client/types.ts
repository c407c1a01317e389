/** What the data pipeline's client offers other services (import-free: types only). */
import type { z } from 'zod';
import type { exportManifestSchema } from '../routes/schemas.js';

/** A version's manifest.json as an export writes it (the route's schema). */
export type ExportManifest = z.infer<typeof exportManifestSchema>;

/** What training needs to know about a dataset version before it trains. */
export interface DatasetVersionInfo {
  versionId: string;
  /** sha256 of the preprocessing spec. */
  preprocessingHash: string;
  itemCount: number;
  /** The side images are stored at (the preprocessing size). */
  preprocessingSize: number | null;
}

/** One labelled image of a dataset version (its manifest item, without the patient). */
export interface VersionItem {
  hash: string;
  label: 'NORMAL' | 'PNEUMONIA';
  split: 'train' | 'val' | 'test';
}

/** On whose behalf a call is made: their credential travels with it over HTTP. */
export interface DataCallContext {
  authorization?: string;
  requestId?: string;
}

/** The data pipeline, as other services see it. */
export interface DataPipelineClient {
  /** 'in-process' or the base URL it calls. */
  readonly target: string;
  /**
   * The stored bytes of an ingested image (DICOM: the de-identified file) by its sha256.
   * @throws AppError NOT_FOUND when no stored image has that hash.
   */
  imageBytes(sha256: string, ctx?: DataCallContext): Promise<Buffer>;
  /** @throws AppError NOT_FOUND for an unknown version, INVALID_INPUT for a malformed id. */
  describeVersion(versionId: string, ctx?: DataCallContext): Promise<DatasetVersionInfo>;
  /**
   * The labelled images of a version (hash, label, split), from its manifest; the version id is
   * the manifest's sha256. @throws AppError NOT_FOUND for an unknown version.
   */
  versionItems(versionId: string, ctx?: DataCallContext): Promise<VersionItem[]>;
  /**
   * Writes the version's export (images/<hash>.png preprocessed, then manifest.json last) into
   * `dir` on this host, which must not exist yet or be empty.
   */
  exportVersion(versionId: string, dir: string, ctx?: DataCallContext): Promise<void>;
}

/** Key under which an in-process data pipeline offers its client (LocalServices). */
export const DATA_PIPELINE_LOCAL_KEY = 'data-pipeline.client';
