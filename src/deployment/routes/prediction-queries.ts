import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../../core/http/index.js';
import type { PredictionQueries } from '../client/types.js';
import { monitoredPredictionSchema, predictionWindowSchema, timelineBucketSchema, timelineQuerySchema, trafficGroupSchema, windowQuerySchema } from './schemas.js';

const TAGS = ['prediction queries (internal)'];
const BASE = '/prediction-queries';
const time = z.coerce.number().finite();

/**
 * What monitoring reads of the prediction records, over HTTP when it runs in another process:
 * internal routes (a service token or a service client certificate), viewer role.
 */
export function predictionQueryRoutes(app: FastifyInstance, queries: PredictionQueries): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const config = { role: 'viewer' as const, internal: true };
  r.post(
    `${BASE}/window`,
    { config, schema: { tags: TAGS, summary: 'A window of predictions of one model version, columnar, oldest first', body: windowQuerySchema, response: { 200: predictionWindowSchema, ...errorResponses } } },
    async (req) => queries.window(req.body),
  );
  r.get(
    `${BASE}/predictions/:id`,
    {
      config,
      schema: { tags: TAGS, summary: 'One prediction as monitoring sees it (null when unknown)', params: z.object({ id: z.string().min(1).max(200) }), response: { 200: z.object({ prediction: monitoredPredictionSchema.nullable() }), ...errorResponses } },
    },
    async (req) => ({ prediction: await queries.get(req.params.id) }),
  );
  r.get(
    `${BASE}/latest-version`,
    { config, schema: { tags: TAGS, summary: 'The version with the most recent prediction of a model', querystring: z.object({ model: z.string().min(1).max(128) }), response: { 200: z.object({ version: z.string().nullable() }), ...errorResponses } } },
    async (req) => ({ version: await queries.latestVersion(req.query.model) }),
  );
  r.get(
    `${BASE}/active-versions`,
    {
      config,
      schema: { tags: TAGS, summary: 'Model versions with a prediction since a time', querystring: z.object({ since: time }), response: { 200: z.object({ versions: z.array(z.object({ model: z.string(), version: z.string() })) }), ...errorResponses } },
    },
    async (req) => ({ versions: await queries.activeVersions(req.query.since) }),
  );
  r.get(
    `${BASE}/traffic`,
    {
      config,
      schema: {
        tags: TAGS,
        summary: 'Aggregates per model version and variant of predictions in [since, until]',
        querystring: z.object({ since: time, until: time, limit: z.coerce.number().int().positive().max(1_000_000).optional() }),
        response: { 200: z.object({ groups: z.array(trafficGroupSchema) }), ...errorResponses },
      },
    },
    async (req) => ({ groups: await queries.traffic(req.query.since, req.query.until, req.query.limit) }),
  );
  r.get(
    `${BASE}/timeline`,
    { config, schema: { tags: TAGS, summary: 'Volume, positives and latency per time bucket', querystring: timelineQuerySchema, response: { 200: z.object({ buckets: z.array(timelineBucketSchema) }), ...errorResponses } } },
    async (req) => ({ buckets: await queries.timeline(req.query) }),
  );
}
