import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AppError } from '../../core/errors.js';
import type { Platform } from '../../core/platform.js';
import type { PreprocessSpec } from '../../core/imaging/index.js';
import type { ClassLabel, Split } from '../store/types.js';
import type { AugmentationSpec } from './augmentation.js';
import { SERVICE_NAME, dataContext, type DataContext } from './context.js';
import type { DatasetManifest } from './manifest.js';
import { preprocessedPng } from './preprocessed.js';
import { getManifest } from './versions.js';

/**
 * The folder format the Python trainer reads: `<dir>/manifest.json` (this shape, exactly) and
 * `<dir>/images/<hash>.png` (preprocessed, 8-bit greyscale, `preprocessing.size` square).
 */
export interface ExportManifest {
  version_id: string;
  classes: ClassLabel[];
  preprocessing: PreprocessSpec & { hash: string };
  augmentation: AugmentationSpec;
  items: { hash: string; file: string; label: ClassLabel; split: Split; patient: string | null }[];
}

export interface ExportResult {
  version_id: string;
  dir: string;
  manifest: string;
  items: number;
  /** PNGs made now (the rest came from the preprocessed cache). */
  preprocessed: number;
}

export interface ExportOptions {
  /** Called after each image with (done, total). */
  onProgress?: (done: number, total: number) => void;
  actor?: string;
  requestId?: string;
}

/** Files preprocessed and written at once. */
const EXPORT_CONCURRENCY = 3;

/** The trainer-facing manifest of a version (what `manifest.json` holds). */
export function toExportManifest(versionId: string, manifest: DatasetManifest): ExportManifest {
  return {
    version_id: versionId,
    classes: [...manifest.classes],
    preprocessing: manifest.preprocessing,
    augmentation: manifest.augmentation,
    items: manifest.items.map((i) => ({ hash: i.hash, file: `images/${i.hash}.png`, label: i.label, split: i.split, patient: i.patient })),
  };
}

async function writeAtomic(file: string, data: Buffer | string): Promise<void> {
  const tmp = `${file}.${randomUUID()}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

async function exportWith(ctx: DataContext, versionId: string, dir: string, options: ExportOptions): Promise<ExportResult> {
  const manifest = await getManifest(ctx, versionId);
  const out = toExportManifest(versionId, manifest);
  const target = path.resolve(dir);
  await mkdir(path.join(target, 'images'), { recursive: true });
  let next = 0;
  let done = 0;
  let made = 0;
  const worker = async () => {
    while (next < manifest.items.length) {
      const item = manifest.items[next++]!;
      const { png, cached } = await preprocessedPng(ctx, item.hash, manifest.preprocessing);
      if (!cached) made++;
      await writeAtomic(path.join(target, 'images', `${item.hash}.png`), png);
      options.onProgress?.(++done, manifest.items.length);
    }
  };
  await Promise.all(Array.from({ length: EXPORT_CONCURRENCY }, worker));
  // The manifest goes last: its presence means the folder is complete.
  const manifestPath = path.join(target, 'manifest.json');
  await writeAtomic(manifestPath, JSON.stringify(out, null, 1));
  ctx.platform.audit.record({
    actor: options.actor ?? 'system',
    action: 'data.version.export',
    resource: `dataset:${versionId}`,
    requestId: options.requestId ?? null,
    service: SERVICE_NAME,
    details: { dir: target, items: out.items.length },
  });
  return { version_id: versionId, dir: target, manifest: manifestPath, items: out.items.length, preprocessed: made };
}

/**
 * Writes a dataset version to `dir` for training: `manifest.json` plus `images/<hash>.png`,
 * preprocessing (and caching in the object store under `preprocessed/<spechash>/`) what is not
 * cached yet. The training service calls this.
 * @throws AppError NOT_FOUND (unknown version), INVALID_INPUT (malformed id).
 */
export function exportDatasetVersion(platform: Platform, versionId: string, dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  return exportWith(dataContext(platform), versionId, dir, options);
}

const EXPORT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,3}$/;

/**
 * An API-requested export folder, always under `<XRAY_HOME>/exports`.
 * @throws AppError INVALID_INPUT for absolute paths, `..`, or odd characters.
 */
export function resolveExportDir(home: string, requested: string): string {
  if (!EXPORT_NAME.test(requested) || requested.split('/').some((p) => p === '..' || p === '.')) {
    throw new AppError('INVALID_INPUT', `export dir '${requested.replace(/[^\x20-\x7e]/g, '?')}' must be a relative name under XRAY_HOME/exports (letters, digits, . _ -)`);
  }
  const base = path.join(home, 'exports');
  const dir = path.resolve(base, requested);
  if (!dir.startsWith(base + path.sep)) throw new AppError('INVALID_INPUT', 'export dir must stay under XRAY_HOME/exports');
  return dir;
}
