/**
 * POST /predict of the deployment service over HTTP, for services that send it image bytes
 * (the data pipeline's DICOM auto-predict). The answer's type is the route's response schema;
 * the error envelope comes back as the AppError it was (as ServiceHttpClient does for JSON calls).
 */
import type { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { toAppError } from '../../core/http/service-client.js';
import type { ServiceTransport } from '../../core/http/service-transport.js';
import type { predictionSchema } from '../routes/schemas.js';
import type { CallContext } from './types.js';

export type Prediction = z.infer<typeof predictionSchema>;

export interface PredictOptions extends CallContext {
  /** Model name (its production alias); default: the deployment's default model. */
  model?: string;
  version?: string;
  /** Return the heatmap overlay PNG inline (heatmap_png_base64). */
  inlineHeatmap?: boolean;
  contentType?: string;
  timeoutMs?: number;
}

/** Predicts one image through the deployment's HTTP API. Not retried: a prediction is recorded. */
export class HttpPredictClient {
  readonly baseUrl: string;
  readonly #transport?: ServiceTransport;

  /** `transport`: the platform's (TLS with the platform CA and client certificate, service token). */
  constructor(baseUrl: string, opts: { transport?: ServiceTransport } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.#transport = opts.transport;
  }

  /**
   * @throws AppError with the deployment's code (MODEL_NOT_FOUND, UNPROCESSABLE, …), or
   *   SERVICE_UNAVAILABLE (details.unreachable) when it cannot be reached in time.
   */
  async predict(image: Uint8Array, opts: PredictOptions = {}): Promise<Prediction> {
    const q = new URLSearchParams();
    if (opts.model) q.set('model', opts.model);
    if (opts.version) q.set('version', opts.version);
    if (opts.inlineHeatmap) q.set('heatmap', 'inline');
    const url = `${this.baseUrl}/predict${q.size ? `?${q}` : ''}`;
    const headers: Record<string, string> = { accept: 'application/json', 'content-type': opts.contentType ?? 'application/octet-stream' };
    if (opts.authorization) headers.authorization = opts.authorization;
    if (opts.requestId) headers['x-request-id'] = opts.requestId;
    const timeoutMs = opts.timeoutMs ?? 60_000;
    let res: Response;
    try {
      const init = { method: 'POST', headers: { ...headers, ...(await this.#transport?.identityHeaders('deployment')) }, body: Uint8Array.from(image), signal: AbortSignal.timeout(timeoutMs) };
      res = await (this.#transport ? this.#transport.fetch(url, init) : fetch(url, init));
    } catch (err) {
      const why = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : ((err as { cause?: { code?: string } })?.cause?.code ?? String(err));
      throw new AppError('SERVICE_UNAVAILABLE', `the deployment service at ${this.baseUrl} is unreachable (${why})`, { unreachable: true });
    }
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    if (!res.ok) throw toAppError(res.status, body, 'deployment POST /predict');
    return body as Prediction;
  }
}
