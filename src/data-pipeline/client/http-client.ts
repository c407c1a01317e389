import { ServiceHttpClient } from '../../core/http/service-client.js';
import type { ServiceTransport } from '../../core/http/service-transport.js';
import type { DataCallContext, DataPipelineClient } from './types.js';

/** The data pipeline over its HTTP routes (another process or host). */
export class HttpDataPipelineClient implements DataPipelineClient {
  readonly #http: ServiceHttpClient;

  constructor(baseUrl: string, opts: { timeoutMs?: number; transport?: ServiceTransport } = {}) {
    this.#http = new ServiceHttpClient(baseUrl, { service: 'data-pipeline', timeoutMs: opts.timeoutMs ?? 30_000, transport: opts.transport });
  }

  get target(): string {
    return this.#http.baseUrl;
  }

  imageBytes(sha256: string, ctx: DataCallContext = {}): Promise<Buffer> {
    return this.#http.bytes('GET', `/images/${encodeURIComponent(sha256)}/content`, { headers: { authorization: ctx.authorization, 'x-request-id': ctx.requestId } });
  }
}
