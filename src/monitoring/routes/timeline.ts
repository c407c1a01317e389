import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errorResponses } from '../../core/http/index.js';
import { invalidInput } from '../../core/errors.js';
import type { PredictionSource } from '../store/prediction-source.js';
import { timelineQuery, timelineSchema, toEpochMs } from './schemas.js';

const TAGS = ['traffic'];
const DAY_MS = 86_400_000;
const MAX_BUCKETS = 1000;
/** Round bucket widths (seconds) the default picks from. */
const STEPS_S = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400, 7 * 86_400];
const DEFAULT_BUCKETS = 120;

/** The smallest round width that covers `spanMs` in at most DEFAULT_BUCKETS buckets. */
export function defaultBucketSeconds(spanMs: number): number {
  return STEPS_S.find((s) => spanMs / (s * 1000) <= DEFAULT_BUCKETS) ?? Math.ceil(spanMs / 1000 / DEFAULT_BUCKETS);
}

/** Prediction volume, positive rate and latency over time (from the prediction records; no patient data). */
export function timelineRoutes(app: FastifyInstance, predictions: PredictionSource): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/traffic',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'Prediction volume, positive rate and latency over time',
        description:
          'Counts the logged predictions (shadow calls excluded) per time bucket, optionally of one model or version: how many, how many at or above the threshold, ' +
          'how many the cache answered, and mean/max end-to-end latency. since/until take epoch ms or ISO 8601.',
        querystring: timelineQuery,
        response: { 200: timelineSchema, ...errorResponses },
      },
    },
    async (req) => {
      const q = req.query;
      const until = toEpochMs(q.until) ?? Date.now();
      const requestedSince = toEpochMs(q.since) ?? until - DAY_MS;
      if (!Number.isFinite(until) || !Number.isFinite(requestedSince)) throw invalidInput('since/until must be epoch milliseconds or ISO 8601 date-times');
      if (requestedSince >= until) throw invalidInput('since must be before until');
      const bucketS = q.bucket_s ?? defaultBucketSeconds(until - requestedSince);
      const bucketMs = bucketS * 1000;
      const since = Math.floor(requestedSince / bucketMs) * bucketMs;
      const n = Math.ceil((until - since) / bucketMs);
      if (n > MAX_BUCKETS) throw invalidInput(`${n} buckets of ${bucketS} s between since and until; at most ${MAX_BUCKETS} (widen bucket_s or narrow the range)`);
      const buckets = await predictions.timeline({
        ...(q.model !== undefined ? { model: q.model } : {}),
        ...(q.version !== undefined ? { version: q.version } : {}),
        since,
        until,
        bucketMs,
      });
      return {
        model: q.model ?? null,
        version: q.version ?? null,
        since,
        until,
        bucket_s: bucketS,
        total: buckets.reduce((a, b) => a + b.count, 0),
        positives: buckets.reduce((a, b) => a + b.positives, 0),
        buckets: buckets.map((b) => ({
          t: b.t,
          count: b.count,
          positives: b.positives,
          positive_rate: b.count > 0 ? b.positives / b.count : null,
          cached: b.cached,
          latency_mean_ms: b.latencyMeanMs,
          latency_max_ms: b.latencyMaxMs,
        })),
      };
    },
  );
}
