import { ServiceHttpClient } from '../../core/http/service-client.js';
import type { ServiceTransport } from '../../core/http/service-transport.js';
import type { MonitoredPrediction, PredictionQueries, PredictionWindow, TimelineBucket, TimelineQuery, TrafficGroup, WindowQuery } from './types.js';

const BASE = '/prediction-queries';

/** The deployment's prediction queries over its internal routes (monitoring in another process). */
export class HttpPredictionQueries implements PredictionQueries {
  readonly #http: ServiceHttpClient;

  constructor(baseUrl: string, opts: { timeoutMs?: number; transport?: ServiceTransport } = {}) {
    this.#http = new ServiceHttpClient(baseUrl, { service: 'deployment', timeoutMs: opts.timeoutMs ?? 60_000, transport: opts.transport });
  }

  window(query: WindowQuery): Promise<PredictionWindow> {
    return this.#http.call<PredictionWindow>('POST', `${BASE}/window`, { body: query, idempotent: true });
  }

  async get(id: string): Promise<MonitoredPrediction | null> {
    return (await this.#http.call<{ prediction: MonitoredPrediction | null }>('GET', `${BASE}/predictions/${encodeURIComponent(id)}`)).prediction;
  }

  async latestVersion(model: string): Promise<string | null> {
    return (await this.#http.call<{ version: string | null }>('GET', `${BASE}/latest-version?model=${encodeURIComponent(model)}`)).version;
  }

  async activeVersions(since: number): Promise<{ model: string; version: string }[]> {
    return (await this.#http.call<{ versions: { model: string; version: string }[] }>('GET', `${BASE}/active-versions?since=${since}`)).versions;
  }

  async traffic(since: number, until: number, limit?: number): Promise<TrafficGroup[]> {
    const q = new URLSearchParams({ since: String(since), until: String(until), ...(limit !== undefined ? { limit: String(limit) } : {}) });
    return (await this.#http.call<{ groups: TrafficGroup[] }>('GET', `${BASE}/traffic?${q}`)).groups;
  }

  async timeline(query: TimelineQuery): Promise<TimelineBucket[]> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    return (await this.#http.call<{ buckets: TimelineBucket[] }>('GET', `${BASE}/timeline?${q}`)).buckets;
  }
}
