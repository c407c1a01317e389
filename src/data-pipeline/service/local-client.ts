import type { DataPipelineClient, DatasetVersionInfo, VersionItem } from '../client/types.js';
import type { DataContext } from './context.js';
import { exportDatasetVersion } from './export.js';
import { getImageBytes } from './preprocessed.js';
import { getManifest, getVersion } from './versions.js';

/** The data pipeline's client in embedded mode: the same calls its routes make, without HTTP. */
export class LocalDataPipelineClient implements DataPipelineClient {
  readonly target = 'in-process';
  readonly #ctx: DataContext;

  constructor(ctx: DataContext) {
    this.#ctx = ctx;
  }

  imageBytes(sha256: string): Promise<Buffer> {
    return getImageBytes(this.#ctx, sha256);
  }

  async describeVersion(versionId: string): Promise<DatasetVersionInfo> {
    const v = await getVersion(this.#ctx, versionId);
    const manifest = await getManifest(this.#ctx, v.id);
    return { versionId: v.id, preprocessingHash: v.preprocessingHash, itemCount: v.itemCount, preprocessingSize: manifest.preprocessing?.size ?? null };
  }

  async versionItems(versionId: string): Promise<VersionItem[]> {
    const v = await getVersion(this.#ctx, versionId);
    return (await getManifest(this.#ctx, v.id)).items.map((i) => ({ hash: i.hash, label: i.label, split: i.split }));
  }

  async exportVersion(versionId: string, dir: string): Promise<void> {
    await exportDatasetVersion(this.#ctx.platform, versionId, dir, { actor: 'training' });
  }
}
