import { ServiceHttpClient } from '../../core/http/service-client.js';
import type { ServiceTransport } from '../../core/http/service-transport.js';
import type { CallContext, CanaryReport, DeploymentClient, ExplainRequest, ExplanationView } from './types.js';

/** The deployment service over its HTTP routes (another process or host). */
export class HttpDeploymentClient implements DeploymentClient {
  readonly #http: ServiceHttpClient;

  /** `transport`: the platform's (TLS, service token — /models/canary is internal). */
  constructor(baseUrl: string, opts: { timeoutMs?: number; transport?: ServiceTransport } = {}) {
    // A canary creates an ONNX Runtime session and runs the reference images: allow minutes on a busy CPU.
    this.#http = new ServiceHttpClient(baseUrl, { service: 'deployment', timeoutMs: opts.timeoutMs ?? 180_000, transport: opts.transport });
  }

  get target(): string {
    return this.#http.baseUrl;
  }

  canary(name: string, version: number | string, ctx: CallContext = {}): Promise<CanaryReport> {
    return this.#http.call<CanaryReport>('POST', '/models/canary', {
      body: { name, version: String(version) },
      headers: { authorization: ctx.authorization, 'x-request-id': ctx.requestId },
      idempotent: true,
    });
  }

  explain(request: ExplainRequest, ctx: CallContext = {}): Promise<ExplanationView> {
    const headers = { authorization: ctx.authorization, 'x-request-id': ctx.requestId };
    const tuning = { ...(request.patch ? { patch: request.patch } : {}), ...(request.stride ? { stride: request.stride } : {}) };
    if ('predictionId' in request) return this.#http.call<ExplanationView>('POST', '/explain', { body: { prediction_id: request.predictionId, ...tuning }, headers, idempotent: true });
    const query = new URLSearchParams();
    if (request.model) query.set('model', request.model);
    if (request.version) query.set('version', request.version);
    for (const [k, v] of Object.entries(tuning)) query.set(k, String(v));
    const qs = query.toString();
    return this.#http.call<ExplanationView>('POST', `/explain${qs ? `?${qs}` : ''}`, { raw: request.image, headers, idempotent: true });
  }
}
