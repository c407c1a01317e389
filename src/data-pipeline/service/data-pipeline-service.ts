import type { Platform } from '../../core/platform.js';
import type { PreprocessSpecInput } from '../../core/imaging/index.js';
import type { VersionRecord } from '../store/version-store.js';
import type { ImageRecord, Page, PageRequest } from '../store/types.js';
import { dataContext, type DataContext } from './context.js';
import { exportDatasetVersion, type ExportOptions, type ExportResult } from './export.js';
import { getImageBytes, preprocessedPng } from './preprocessed.js';
import { getManifest, getVersion, listVersions, type VersionDiff, diffVersions } from './versions.js';
import type { DatasetManifest } from './manifest.js';

/**
 * What other services call (in-process, on the shared platform — never over HTTP):
 * images by hash, dataset versions and their export for training.
 *
 * @example
 * const data = dataPipelineService(platform);
 * const version = await data.getVersion(versionId);
 * await data.exportDatasetVersion(versionId, workDir);
 */
export class DataPipelineService {
  readonly #ctx: DataContext;

  constructor(platform: Platform) {
    this.#ctx = dataContext(platform);
  }

  /** Metadata of a stored image. @throws AppError NOT_FOUND. */
  getImage(hash: string): Promise<ImageRecord> {
    return this.#ctx.images.require(hash);
  }

  /** Stored bytes of an image (DICOM: the anonymised file). @throws AppError NOT_FOUND. */
  getImageBytes(hash: string): Promise<Buffer> {
    return getImageBytes(this.#ctx, hash);
  }

  /** Preprocessed PNG of a stored image (cached in the object store). */
  async getPreprocessedPng(hash: string, spec: PreprocessSpecInput): Promise<Buffer> {
    return (await preprocessedPng(this.#ctx, hash, spec)).png;
  }

  /** A dataset version's listing row. @throws AppError NOT_FOUND, INVALID_INPUT. */
  getVersion(id: string): Promise<VersionRecord> {
    return getVersion(this.#ctx, id);
  }

  /** The full manifest of a version (items, splits, preprocessing, augmentation). */
  getManifest(id: string): Promise<DatasetManifest> {
    return getManifest(this.#ctx, id);
  }

  /** Dataset versions, newest first, paged. */
  listVersions(page?: PageRequest): Promise<Page<VersionRecord>> {
    return listVersions(this.#ctx, page);
  }

  diffVersions(a: string, b: string): Promise<VersionDiff> {
    return diffVersions(this.#ctx, a, b);
  }

  /** Writes `<dir>/manifest.json` and `<dir>/images/<hash>.png` (see export.ts). */
  exportDatasetVersion(versionId: string, dir: string, options?: ExportOptions): Promise<ExportResult> {
    return exportDatasetVersion(this.#ctx.platform, versionId, dir, options);
  }
}

const services = new WeakMap<Platform, DataPipelineService>();

/** The data pipeline service API of a platform (one instance per platform). */
export function dataPipelineService(platform: Platform): DataPipelineService {
  let s = services.get(platform);
  if (!s) {
    s = new DataPipelineService(platform);
    services.set(platform, s);
  }
  return s;
}
