import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../core/errors.js';
import { ServiceHttpClient } from '../../core/http/service-client.js';
import type { ServiceTransport } from '../../core/http/service-transport.js';
import type { DataCallContext, DataPipelineClient, DatasetVersionInfo, ExportManifest, VersionItem } from './types.js';

const headersOf = (ctx: DataCallContext = {}) => ({ authorization: ctx.authorization, 'x-request-id': ctx.requestId });
/** Preprocessed images fetched at once while exporting over HTTP. */
const EXPORT_CONCURRENCY = 8;

/** The data pipeline over its HTTP routes (another process or host). */
export class HttpDataPipelineClient implements DataPipelineClient {
  readonly #http: ServiceHttpClient;

  constructor(baseUrl: string, opts: { timeoutMs?: number; transport?: ServiceTransport } = {}) {
    this.#http = new ServiceHttpClient(baseUrl, { service: 'data-pipeline', timeoutMs: opts.timeoutMs ?? 30_000, transport: opts.transport });
  }

  get target(): string {
    return this.#http.baseUrl;
  }

  imageBytes(sha256: string, ctx?: DataCallContext): Promise<Buffer> {
    return this.#http.bytes('GET', `/images/${encodeURIComponent(sha256)}/content`, { headers: headersOf(ctx) });
  }

  #manifest(versionId: string, ctx?: DataCallContext): Promise<ExportManifest> {
    return this.#http.call<ExportManifest>('GET', `/versions/${encodeURIComponent(versionId)}/manifest`, { headers: headersOf(ctx) });
  }

  async describeVersion(versionId: string, ctx?: DataCallContext): Promise<DatasetVersionInfo> {
    const m = await this.#manifest(versionId, ctx);
    const size = (m.preprocessing as { size?: unknown }).size;
    return { versionId: m.version_id, preprocessingHash: m.preprocessing.hash, itemCount: m.items.length, preprocessingSize: typeof size === 'number' ? size : null };
  }

  async versionItems(versionId: string, ctx?: DataCallContext): Promise<VersionItem[]> {
    const m = await this.#manifest(versionId, ctx);
    return m.items.map((i) => ({ hash: i.hash, label: i.label, split: i.split }));
  }

  /** The same folder an in-process export writes, from the manifest and each preprocessed PNG. */
  async exportVersion(versionId: string, dir: string, ctx?: DataCallContext): Promise<void> {
    const manifest = await this.#manifest(versionId, ctx);
    await mkdir(path.join(dir, 'images'), { recursive: true });
    let next = 0;
    const worker = async () => {
      while (next < manifest.items.length) {
        const item = manifest.items[next++]!;
        const file = path.resolve(dir, item.file);
        if (!file.startsWith(path.resolve(dir) + path.sep)) throw new AppError('UNPROCESSABLE', `manifest item file '${item.file}' leaves the export folder`);
        const png = await this.#http.bytes('GET', `/versions/${encodeURIComponent(versionId)}/images/${encodeURIComponent(item.hash)}`, { headers: headersOf(ctx) });
        await writeFile(file, png);
      }
    };
    await Promise.all(Array.from({ length: Math.min(EXPORT_CONCURRENCY, manifest.items.length) }, worker));
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  }
}
