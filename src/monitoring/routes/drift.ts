import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses, pageQuery } from '../../core/http/index.js';
import { invalidInput } from '../../core/errors.js';
import type { MonitoringContext } from '../service/context.js';
import type { DriftOptions } from '../service/drift-compute.js';
import type { WindowSpec } from '../service/drift-service.js';
import {
  detectBody,
  driftOptionsSchema,
  idParams,
  referenceBody,
  referenceSchema,
  reportQuery,
  reportSchema,
  toEpochMs,
  toReferenceView,
  windowSchema,
} from './schemas.js';

const TAGS = ['drift'];
const DEFAULT_LAST_N = 1000;

function epoch(v: number | string | undefined, field: string): number | undefined {
  const t = toEpochMs(v);
  if (t !== undefined && !Number.isFinite(t)) throw invalidInput(`${field} is not a date-time or epoch milliseconds`);
  return t;
}

/** Request window → service window; a body may not mix a time range with last_n. */
export function toWindow(w: z.infer<typeof windowSchema> | undefined): WindowSpec {
  if (!w || (w.since === undefined && w.until === undefined && w.last_n === undefined)) return { lastN: DEFAULT_LAST_N };
  if (w.last_n !== undefined) {
    if (w.since !== undefined || w.until !== undefined) throw invalidInput('window takes either {since, until} or {last_n}, not both');
    return { lastN: w.last_n };
  }
  const since = epoch(w.since, 'window.since');
  const until = epoch(w.until, 'window.until');
  if (since !== undefined && until !== undefined && since > until) throw invalidInput('window.since is after window.until');
  return { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) };
}

function toOptions(o: z.infer<typeof driftOptionsSchema> | undefined): Partial<DriftOptions> {
  if (!o) return {};
  const map: Partial<DriftOptions> = {};
  if (o.ks_max_rows !== undefined) map.ksMaxRows = o.ks_max_rows;
  if (o.ks_alpha !== undefined) map.ksAlpha = o.ks_alpha;
  if (o.wasserstein_threshold !== undefined) map.wassersteinThreshold = o.wasserstein_threshold;
  if (o.dataset_drift_share !== undefined) map.datasetDriftShare = o.dataset_drift_share;
  if (o.mmd_alpha !== undefined) map.mmdAlpha = o.mmd_alpha;
  if (o.mmd_permutations !== undefined) map.mmdPermutations = o.mmd_permutations;
  if (o.mmd_samples !== undefined) map.mmdSamples = o.mmd_samples;
  if (o.classifier_auc_threshold !== undefined) map.classifierAucThreshold = o.classifier_auc_threshold;
  if (o.classifier_alpha !== undefined) map.classifierAlpha = o.classifier_alpha;
  if (o.classifier_samples !== undefined) map.classifierSamples = o.classifier_samples;
  if (o.prediction_alpha !== undefined) map.predictionAlpha = o.prediction_alpha;
  if (o.min_rows !== undefined) map.minRows = o.min_rows;
  if (o.features !== undefined) map.features = o.features;
  return map;
}

export function driftRoutes(app: FastifyInstance, ctx: MonitoringContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post(
    '/drift/detect',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Run a drift check of a model version now',
        description:
          'Compares a current window of prediction records with the reference of the model version: image statistics (KS while the reference has ≤ ks_max_rows rows, ' +
          'normed Wasserstein above; PSI reported; dataset drift when ≥ dataset_drift_share of features drift), embeddings (MMD with an RBF kernel and a permutation ' +
          'p-value; domain-classifier AUC), predictions (positive-rate z-test, probability KS) and, with ground-truth feedback, rolling AUC. The computation runs in a ' +
          'worker thread. The report is stored, updates the drift gauges and raises or clears alerts. Default window: the last 1000 predictions; default version: the ' +
          'one with the most recent prediction.',
        body: detectBody,
        response: { 200: reportSchema, ...errorResponses },
      },
    },
    async (req) => {
      const b = req.body;
      return ctx.drift.detect({
        model: b.model,
        ...(b.version ? { version: b.version } : {}),
        ...(b.reference_id ? { referenceId: b.reference_id } : {}),
        window: toWindow(b.window),
        trigger: 'manual',
        actor: req.principal.name,
        requestId: req.id,
        overrides: toOptions(b.options),
      });
    },
  );

  r.post(
    '/drift/reference',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Store reference statistics for a model version',
        description:
          'Either supplied rows in the registry\'s reference.json format ({stats, embeddings, probabilities, labels?, threshold?}) or a set of prediction records ' +
          '(prediction_ids, or a window {since, until} | {last_n} | {first_n}). The newest reference of a version is used by later drift checks.',
        body: referenceBody,
        response: { 201: referenceSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const b = req.body;
      let info;
      if (b.reference) {
        if (b.window || b.prediction_ids) throw invalidInput('give either reference rows or a window / prediction_ids, not both');
        info = await ctx.drift.createReference(b.model, b.version, { from: 'rows', document: b.reference }, req.principal.name, req.id);
      } else {
        const w = b.window;
        const window = w?.first_n !== undefined ? { firstN: w.first_n } : w ? toWindow(w) : undefined;
        if (w?.first_n !== undefined && (w.since !== undefined || w.until !== undefined || w.last_n !== undefined)) {
          throw invalidInput('window.first_n cannot be combined with since/until/last_n');
        }
        info = await ctx.drift.createReference(
          b.model,
          b.version,
          { from: 'predictions', ...(window ? { window } : {}), ...(b.prediction_ids ? { predictionIds: b.prediction_ids } : {}) },
          req.principal.name,
          req.id,
        );
      }
      void reply.status(201);
      return toReferenceView(info);
    },
  );

  r.get(
    '/drift/references',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'List drift references, newest first',
        querystring: pageQuery.extend({ model: z.string().max(200).optional(), version: z.string().max(64).optional() }),
        response: { 200: z.object({ items: z.array(referenceSchema), next_page_token: z.string().optional() }), ...errorResponses },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await ctx.drift.references({ model: q.model, version: q.version, pageSize: q.page_size, pageToken: q.page_token });
      return { items: page.items.map(toReferenceView), ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );

  r.get(
    '/drift/references/:id',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: 'One drift reference', params: idParams, response: { 200: referenceSchema, ...errorResponses } },
    },
    async (req) => toReferenceView(await ctx.drift.reference(req.params.id)),
  );

  r.get(
    '/drift/reports',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'List drift reports, newest first',
        querystring: reportQuery,
        response: { 200: z.object({ items: z.array(reportSchema), next_page_token: z.string().optional() }), ...errorResponses },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await ctx.drift.reports({ model: q.model, version: q.version, verdict: q.verdict, pageSize: q.page_size, pageToken: q.page_token });
      return { items: page.items, ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );

  r.get(
    '/drift/reports/:id',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: 'One drift report', params: idParams, response: { 200: reportSchema, ...errorResponses } },
    },
    async (req) => ctx.drift.report(req.params.id),
  );
}
