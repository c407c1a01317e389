import { sql, type Kysely } from 'kysely';
import type { Database } from '../../core/db/index.js';
import { flattenStats } from '../../core/ml/flatten-stats.js';
import { Rng } from '../../core/ml/random.js';
import type { MonitoredPrediction, PredictionQueries, PredictionWindow, TimelineBucket, TimelineQuery, TrafficGroup, WindowQuery } from '../client/types.js';
import { KyselyPredictionStore, type PredictionRecord, type PredictionStore } from '../store/prediction-store.js';
import type { DeploymentTables } from '../store/tables.js';

/**
 * {@link PredictionQueries} over this service's {@link PredictionStore} (windows and single
 * records), plus narrow read-only aggregates on its table for monitoring's gauges, traffic and
 * scheduler (which must not parse every row's stats and embedding).
 */
export class StorePredictionQueries implements PredictionQueries {
  readonly #store: PredictionStore;
  readonly #db: Kysely<DeploymentTables>;

  constructor(database: Database, store: PredictionStore = new KyselyPredictionStore(database)) {
    this.#store = store;
    this.#db = database.db as Kysely<DeploymentTables>;
  }

  async window(q: WindowQuery): Promise<PredictionWindow> {
    const records = q.ids ? await this.#byIds(q) : await this.#byRange(q);
    const pick = new Uint8Array(records.length);
    if (records.length <= q.embeddingSample) pick.fill(1);
    else for (const i of new Rng(q.seed ?? 0).sampleIndices(records.length, q.embeddingSample)) pick[i] = 1;
    const out: PredictionWindow = { ids: [], times: [], probabilities: [], thresholds: [], stats: [], embeddings: [] };
    records.forEach((r, i) => {
      out.ids.push(r.id);
      out.times.push(r.time);
      out.probabilities.push(r.probability);
      out.thresholds.push(r.threshold);
      out.stats.push(flattenStats(r.stats));
      if (pick[i] && validEmbedding(r.embedding)) out.embeddings.push(r.embedding);
    });
    return out;
  }

  async #byRange(q: WindowQuery): Promise<PredictionRecord[]> {
    const want = Math.min(q.lastN ?? q.firstN ?? q.limit, q.limit);
    const order = q.firstN !== undefined ? 'asc' : 'desc';
    let since = q.since;
    if (q.after !== undefined) since = Math.max(since ?? -Infinity, q.after + 1);
    const out: PredictionRecord[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.#store.list({
        model: q.model,
        version: q.version,
        ...(since !== undefined ? { since } : {}),
        ...(q.until !== undefined ? { until: q.until } : {}),
        order,
        pageSize: Math.min(PAGE, want - out.length),
        ...(pageToken ? { pageToken } : {}),
      });
      out.push(...page.items);
      pageToken = page.nextPageToken;
      // SQLite reads are synchronous: let requests through between pages.
      if (pageToken) await new Promise((resolve) => setImmediate(resolve));
    } while (pageToken && out.length < want);
    return order === 'desc' ? out.reverse() : out;
  }

  async #byIds(q: WindowQuery): Promise<PredictionRecord[]> {
    const ids = [...new Set(q.ids!)].slice(0, 10_000);
    const found: PredictionRecord[] = [];
    for (let i = 0; i < ids.length; i += 50) {
      const chunk = await Promise.all(ids.slice(i, i + 50).map((id) => this.#store.get(id)));
      for (const r of chunk) if (r && r.modelName === q.model && r.modelVersion === q.version) found.push(r);
    }
    return found.sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : 1));
  }

  async get(id: string): Promise<MonitoredPrediction | null> {
    const r = await this.#store.get(id);
    if (!r) return null;
    return {
      id: r.id,
      time: r.time,
      model: r.modelName,
      version: r.modelVersion,
      variant: r.variant,
      shadow: r.shadow,
      probability: r.probability,
      threshold: r.threshold,
      latencyMs: r.latencyMs,
      requestId: r.requestId,
      imageSha256: r.imageSha256,
      stats: flattenStats(r.stats),
      embedding: validEmbedding(r.embedding) ? r.embedding : null,
    };
  }

  async latestVersion(model: string): Promise<string | null> {
    const page = await this.#store.list({ model, order: 'desc', pageSize: 1 });
    return page.items[0]?.modelVersion ?? null;
  }

  async activeVersions(since: number): Promise<{ model: string; version: string }[]> {
    const rows = await this.#db
      .selectFrom('predictions')
      .select(['model_name', 'model_version'])
      .where('time', '>=', since)
      .groupBy(['model_name', 'model_version'])
      .execute();
    return rows.map((r) => ({ model: r.model_name, version: String(r.model_version) }));
  }

  async traffic(since: number, until: number, limit = 200_000): Promise<TrafficGroup[]> {
    const rows = await this.#db
      .selectFrom('predictions')
      .select(['model_name', 'model_version', 'variant', 'probability', 'threshold', 'latency_ms', 'time'])
      .where('time', '>=', since)
      .where('time', '<=', until)
      .orderBy('time', 'desc')
      .limit(limit)
      .execute();
    const groups = new Map<string, TrafficGroup>();
    for (const r of rows) {
      const version = String(r.model_version);
      const variant = r.variant ?? 'default';
      const key = `${r.model_name}\u0000${version}\u0000${variant}`;
      let g = groups.get(key);
      if (!g) {
        g = { model: r.model_name, version, variant, count: 0, positives: 0, probabilitySum: 0, latenciesMs: [], firstTime: Infinity, lastTime: -Infinity };
        groups.set(key, g);
      }
      const p = Number(r.probability);
      const t = Number(r.time);
      g.count++;
      g.probabilitySum += p;
      if (p >= (r.threshold === null ? 0.5 : Number(r.threshold))) g.positives++;
      if (r.latency_ms !== null && Number.isFinite(Number(r.latency_ms))) g.latenciesMs.push(Number(r.latency_ms));
      g.firstTime = Math.min(g.firstTime, t);
      g.lastTime = Math.max(g.lastTime, t);
    }
    return [...groups.values()];
  }

  async timeline(q: TimelineQuery): Promise<TimelineBucket[]> {
    // Bucket index in SQL (integer on both engines); grouped by ordinal so PostgreSQL sees one expression.
    const bucket = sql<number>`cast((${sql.ref('time')} - ${q.since}) / ${q.bucketMs} as integer)`;
    let query = this.#db
      .selectFrom('predictions')
      .select((eb) => [
        bucket.as('b'),
        eb.fn.countAll<number>().as('n'),
        sql<number>`sum(case when ${sql.ref('probability')} >= ${sql.ref('threshold')} then 1 else 0 end)`.as('positives'),
        sql<number>`sum(${sql.ref('cached')})`.as('cached'),
        eb.fn.avg<number>('latency_ms').as('latency_mean'),
        eb.fn.max('latency_ms').as('latency_max'),
      ])
      .where('time', '>=', q.since)
      .where('time', '<', q.until)
      .where('shadow', '=', 0);
    if (q.model !== undefined) query = query.where('model_name', '=', q.model);
    if (q.version !== undefined) query = query.where('model_version', '=', q.version);
    const rows = await query.groupBy(sql`1`).execute();
    const n = Math.ceil((q.until - q.since) / q.bucketMs);
    const buckets: TimelineBucket[] = Array.from({ length: n }, (_, i) => ({ t: q.since + i * q.bucketMs, count: 0, positives: 0, cached: 0, latencyMeanMs: null, latencyMaxMs: null }));
    for (const r of rows) {
      const b = buckets[Number(r.b)];
      if (!b) continue;
      b.count = Number(r.n);
      b.positives = Number(r.positives);
      b.cached = Number(r.cached);
      b.latencyMeanMs = r.latency_mean === null ? null : Number(r.latency_mean);
      b.latencyMaxMs = r.latency_max === null ? null : Number(r.latency_max);
    }
    return buckets;
  }
}

/** Rows per read while loading a window (bounds how long one read holds the event loop). */
const PAGE = 1000;

function validEmbedding(e: unknown): e is number[] {
  return Array.isArray(e) && e.length > 0 && e.every((x) => typeof x === 'number' && Number.isFinite(x));
}
