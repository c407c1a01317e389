import { realpathSync, existsSync } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../core/errors.js';
import type { Platform } from '../../core/platform.js';
import { dataPipelineClient, type DataPipelineClient } from '../../data-pipeline/client/index.js';
import { exportDir } from './paths.js';

/** What a job needs to know about its dataset before it trains. */
export interface DatasetInfo {
  versionId: string;
  /** sha256 of the preprocessing spec, as the data pipeline records it. */
  preprocessingHash: string;
  itemCount?: number;
  /** The side images are stored at (the preprocessing size); a model must take this input size to serve. */
  preprocessingSize?: number | null;
}

/**
 * Dataset versions as the training service sees them: looked up when a job is submitted and
 * exported (once per version, cached under XRAY_HOME/exports/<version>) when it runs.
 */
export interface DatasetSource {
  /** The version. @throws AppError NOT_FOUND for an unknown version, INVALID_INPUT for a malformed id. */
  describe(versionId: string): Promise<DatasetInfo>;
  /** A folder holding the version's export (manifest.json + images/); reused when already complete. */
  exportDir(versionId: string): Promise<string>;
}

/** {@link DatasetSource} on the data pipeline's client (in-process in embedded mode, HTTP otherwise). */
export class PipelineDatasetSource implements DatasetSource {
  readonly #platform: Platform;
  readonly #pipeline: DataPipelineClient;
  readonly #inFlight = new Map<string, Promise<string>>();

  constructor(platform: Platform) {
    this.#platform = platform;
    this.#pipeline = dataPipelineClient(platform);
  }

  describe(versionId: string): Promise<DatasetInfo> {
    return this.#pipeline.describeVersion(versionId);
  }

  exportDir(versionId: string): Promise<string> {
    const dir = exportDir(this.#platform.config.home, versionId);
    // The exporter writes manifest.json last, so its presence means the folder is complete.
    if (existsSync(path.join(dir, 'manifest.json'))) return Promise.resolve(dir);
    let running = this.#inFlight.get(versionId);
    if (!running) {
      running = this.#export(versionId, dir).finally(() => this.#inFlight.delete(versionId));
      this.#inFlight.set(versionId, running);
    }
    return running;
  }

  async #export(versionId: string, dir: string): Promise<string> {
    // Export beside the target and rename, so a crash mid-export never leaves a half folder that looks done.
    const tmp = `${dir}.partial-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    try {
      await this.#pipeline.exportVersion(versionId, tmp);
      if (existsSync(path.join(dir, 'manifest.json'))) return dir; // another process finished first
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
      return dir;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}

/** Facts about an export folder the tracking tags need (read from its manifest). */
export async function readExportManifestInfo(dir: string): Promise<{ versionId: string; preprocessingHash: string; items: number }> {
  let raw: { version_id?: unknown; preprocessing?: { hash?: unknown }; items?: unknown[] };
  try {
    raw = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
  } catch (err) {
    throw new AppError('UNPROCESSABLE', `dataset folder '${dir}' has no readable manifest.json (${(err as Error).message})`);
  }
  return {
    versionId: typeof raw.version_id === 'string' ? raw.version_id : '',
    preprocessingHash: typeof raw.preprocessing?.hash === 'string' ? raw.preprocessing.hash : '',
    items: Array.isArray(raw.items) ? raw.items.length : 0,
  };
}

/**
 * A dev/test dataset folder given directly: it must already be an export and sit inside
 * XRAY_HOME or the import root, so the API cannot be used to read arbitrary server paths.
 */
export function checkDatasetDir(dir: string, allowedRoots: readonly string[]): string {
  const outside = () => new AppError('INVALID_INPUT', 'dataset_dir must be inside XRAY_HOME or XRAY_IMPORT_ROOT');
  const realOr = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return null;
    }
  };
  const under = (candidate: string, roots: string[]) => roots.some((r) => candidate === r || candidate.startsWith(r + path.sep));
  const lexical = allowedRoots.map((r) => path.resolve(r));
  const realRoots = lexical.map((r) => realOr(r) ?? r);
  const abs = path.resolve(dir);
  if (!under(abs, [...lexical, ...realRoots])) throw outside();
  // Symlinks may not lead out of the roots: the real path must be inside one too.
  const resolved = realOr(abs);
  if (resolved === null) throw new AppError('INVALID_INPUT', `dataset_dir '${abs}' is not a dataset export (no manifest.json)`);
  if (!under(resolved, realRoots)) throw outside();
  if (!existsSync(path.join(resolved, 'manifest.json'))) {
    throw new AppError('INVALID_INPUT', `dataset_dir '${resolved}' is not a dataset export (no manifest.json)`);
  }
  return resolved;
}
