import { isAppError } from '../../core/errors.js';
import { ServiceHttpClient } from '../../core/http/service-client.js';
import type { ServiceTransport } from '../../core/http/service-transport.js';
import { HttpRunTracker } from './http-tracking.js';
import type { ModelRegistryClient, ModelVersionView, RegisterVersionRequest, RegistryCallContext, RunTracker } from './types.js';

const enc = encodeURIComponent;
const headersOf = (ctx: RegistryCallContext = {}) => ({ authorization: ctx.authorization, 'x-request-id': ctx.requestId });

/** The model registry over its HTTP routes (another process or host). */
export class HttpModelRegistryClient implements ModelRegistryClient {
  readonly #http: ServiceHttpClient;
  readonly tracking: RunTracker;

  constructor(baseUrl: string, opts: { timeoutMs?: number; transport?: ServiceTransport } = {}) {
    // Artifacts (ONNX files of tens of MB) and registration (an ONNX Runtime load) may take a while.
    this.#http = new ServiceHttpClient(baseUrl, { service: 'model-registry', timeoutMs: opts.timeoutMs ?? 120_000, transport: opts.transport });
    this.tracking = new HttpRunTracker(this.#http);
  }

  get target(): string {
    return this.#http.baseUrl;
  }

  async getVersion(name: string, versionOrAlias: string | number, ctx?: RegistryCallContext): Promise<ModelVersionView> {
    const res = await this.#http.call<{ model_version: ModelVersionView }>('GET', `/models/${enc(name)}/versions/${enc(String(versionOrAlias))}`, { headers: headersOf(ctx) });
    return res.model_version;
  }

  async artifact(name: string, version: number, path: string, ctx?: RegistryCallContext): Promise<Buffer | null> {
    const file = path.split('/').map(enc).join('/');
    try {
      return await this.#http.bytes('GET', `/models/${enc(name)}/versions/${version}/artifacts/${file}`, { headers: headersOf(ctx) });
    } catch (err) {
      // A missing file is null; a missing model or version is an error (as in-process).
      if (isAppError(err) && err.code === 'NOT_FOUND' && (err.details as { missing?: string } | undefined)?.missing === 'artifact') return null;
      throw err;
    }
  }

  async register(request: RegisterVersionRequest, ctx?: RegistryCallContext): Promise<ModelVersionView> {
    const form = new FormData();
    form.set('name', request.name);
    if (request.source.kind === 'run') {
      form.set('run_id', request.source.runId);
      form.set('artifact_path', request.source.artifactPath);
    } else {
      form.set('file', new Blob([new Uint8Array(request.source.data)]), request.source.filename ?? 'model.onnx');
    }
    if (request.metadata) form.set('metadata', JSON.stringify(request.metadata));
    if (request.description) form.set('description', request.description);
    if (request.datasetVersion) form.set('dataset_version', request.datasetVersion);
    if (request.tags?.length) form.set('tags', JSON.stringify(Object.fromEntries(request.tags.map((t) => [t.key, t.value]))));
    for (const extra of request.extraArtifacts ?? []) {
      form.append('artifact', new Blob([new Uint8Array(extra.data)], extra.contentType ? { type: extra.contentType } : {}), extra.path);
    }
    const res = await this.#http.call<{ model_version: ModelVersionView }>('POST', '/models/register', { form, headers: headersOf(ctx) });
    return res.model_version;
  }
}
