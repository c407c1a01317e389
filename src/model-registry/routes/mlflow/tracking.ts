import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DEFAULT_EXPERIMENT_ID, RUN_STATUSES } from '../../store/tracking-store.js';
import {
  contextOf,
  double,
  empty,
  int64,
  keyValue,
  maxResults,
  mlflowErrors,
  mlflowExperiment,
  mlflowMetric,
  mlflowRun,
  mlflowRunInfo,
  parseRequest,
  repeated,
  requestFields,
  toMlflowExperiment,
  toMlflowMetric,
  toMlflowRun,
  viewType,
  withToken,
} from './common.js';

const TAGS = ['mlflow tracking'];
/**
 * Hot read paths answer many runs × metrics; their bodies are built from typed store rows, so they
 * skip zod's response validation (the schema stays for /docs) and go straight to JSON.
 */
const plainJson = () => (data: unknown) => JSON.stringify(data);
const runRef = { run_id: z.string().optional(), run_uuid: z.string().optional() };
function runIdOf(body: { run_id?: string; run_uuid?: string }): string {
  const id = body.run_id || body.run_uuid;
  return parseRequest(z.object({ run_id: z.string().min(1) }), { run_id: id }).run_id;
}

const metricInput = z.object({ key: z.string(), value: double, timestamp: int64.optional(), step: int64.optional() });
const datasetInputBody = z.object({
  tags: z.array(keyValue).optional(),
  dataset: z.object({
    name: z.string().min(1),
    digest: z.string().min(1),
    source_type: z.string().default(''),
    source: z.string().default(''),
    schema: z.string().optional(),
    profile: z.string().optional(),
  }),
});

/** MLflow REST 2.0 experiment and run endpoints (mounted under /api/2.0/mlflow). */
export const mlflowTrackingRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const tracking = () => app.modelRegistry.tracking;

  // ── experiments ───────────────────────────────────────────────────────────────────────────
  app.post(
    '/experiments/create',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Create an experiment',
        body: z.object({ name: z.string(), artifact_location: z.string().optional(), tags: z.array(keyValue).optional() }),
        response: { 200: z.object({ experiment_id: z.string() }), ...mlflowErrors },
      },
    },
    async (req) => ({
      experiment_id: await tracking().createExperiment({ name: req.body.name, artifactLocation: req.body.artifact_location, tags: req.body.tags }, contextOf(req)),
    }),
  );

  app.get(
    '/experiments/get',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: 'Get an experiment by id', querystring: z.object({ experiment_id: z.string() }), response: { 200: z.object({ experiment: mlflowExperiment }), ...mlflowErrors } },
    },
    async (req) => ({ experiment: toMlflowExperiment(await tracking().store.getExperiment(req.query.experiment_id)) }),
  );

  app.get(
    '/experiments/get-by-name',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: 'Get an experiment by name', querystring: z.object({ experiment_name: z.string() }), response: { 200: z.object({ experiment: mlflowExperiment }), ...mlflowErrors } },
    },
    async (req) => ({ experiment: toMlflowExperiment(await tracking().store.getExperimentByName(req.query.experiment_name)) }),
  );

  const searchExperiments = z.object({ max_results: maxResults, page_token: z.string().optional(), filter: z.string().optional(), order_by: repeated, view_type: viewType });
  const searchExperimentsResponse = { 200: z.object({ experiments: z.array(mlflowExperiment), next_page_token: z.string().optional() }), ...mlflowErrors };
  const doSearchExperiments = async (q: z.output<typeof searchExperiments>) => {
    const page = await tracking().store.searchExperiments({ filter: q.filter, orderBy: q.order_by, viewType: q.view_type, pageSize: q.max_results, pageToken: q.page_token });
    return withToken({ experiments: page.items.map(toMlflowExperiment) }, page.nextPageToken);
  };
  app.post(
    '/experiments/search',
    { config: { role: 'viewer' }, schema: { tags: TAGS, summary: 'Search experiments', body: searchExperiments.optional(), response: searchExperimentsResponse } },
    async (req) => doSearchExperiments(parseRequest(searchExperiments, req.body)),
  );
  app.get(
    '/experiments/search',
    { config: { role: 'viewer' }, schema: { tags: TAGS, summary: 'Search experiments', querystring: searchExperiments, response: searchExperimentsResponse } },
    async (req) => doSearchExperiments(req.query),
  );

  // ── runs ──────────────────────────────────────────────────────────────────────────────────
  app.post(
    '/runs/create',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Create a run',
        body: z.object({
          experiment_id: z.string().optional(),
          user_id: z.string().optional(),
          run_name: z.string().optional(),
          start_time: int64.optional(),
          tags: z.array(keyValue).optional(),
        }),
        response: { 200: z.object({ run: mlflowRun }), ...mlflowErrors },
      },
    },
    async (req) => {
      const b = req.body;
      const run = await tracking().createRun(
        { experimentId: b.experiment_id || DEFAULT_EXPERIMENT_ID, userId: b.user_id || req.principal.name, runName: b.run_name, startTime: b.start_time, tags: b.tags },
        contextOf(req),
      );
      return { run: toMlflowRun(run) };
    },
  );

  app.get(
    '/runs/get',
    { config: { role: 'viewer' }, schema: { tags: TAGS, summary: 'Get a run', querystring: z.object(runRef), response: { 200: z.object({ run: mlflowRun }), ...mlflowErrors } } },
    async (req) => ({ run: toMlflowRun(await tracking().store.getRun(runIdOf(req.query))) }),
  );

  app.post(
    '/runs/update',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Update a run (status, end time, name)',
        body: z.object({ ...runRef, status: z.enum(RUN_STATUSES as [string, ...string[]]).optional(), end_time: int64.optional(), run_name: z.string().optional() }),
        response: { 200: z.object({ run_info: mlflowRunInfo }), ...mlflowErrors },
      },
    },
    async (req) => {
      const b = req.body;
      const info = await tracking().updateRun(runIdOf(b), { status: b.status as (typeof RUN_STATUSES)[number] | undefined, endTime: b.end_time, runName: b.run_name }, contextOf(req));
      return { run_info: info };
    },
  );

  app.post(
    '/runs/delete',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Mark a run deleted', body: z.object({ run_id: z.string() }), response: { 200: empty, ...mlflowErrors } } },
    async (req) => {
      await tracking().deleteRun(req.body.run_id, contextOf(req));
      return {};
    },
  );

  app.post(
    '/runs/restore',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Restore a deleted run', body: z.object({ run_id: z.string() }), response: { 200: empty, ...mlflowErrors } } },
    async (req) => {
      await tracking().restoreRun(req.body.run_id, contextOf(req));
      return {};
    },
  );

  const searchRuns = z.object({
    experiment_ids: repeated,
    filter: z.string().optional(),
    run_view_type: viewType,
    max_results: maxResults,
    order_by: repeated,
    page_token: z.string().optional(),
  });
  app.post(
    '/runs/search',
    {
      config: { role: 'viewer' },
      serializerCompiler: plainJson,
      schema: {
        tags: TAGS,
        summary: "Search runs with MLflow's filter DSL (metrics.auc > 0.9 and params.model = 'x'), order_by and paging",
        body: searchRuns.optional(),
        response: { 200: z.object({ runs: z.array(mlflowRun), next_page_token: z.string().optional() }), ...mlflowErrors },
      },
    },
    async (req) => {
      const q = parseRequest(searchRuns, req.body);
      const page = await tracking().store.searchRuns({
        experimentIds: q.experiment_ids,
        filter: q.filter,
        viewType: q.run_view_type,
        pageSize: q.max_results,
        orderBy: q.order_by,
        pageToken: q.page_token,
      });
      return withToken({ runs: page.items.map(toMlflowRun) }, page.nextPageToken);
    },
  );

  // ── logging ───────────────────────────────────────────────────────────────────────────────
  app.post(
    '/runs/log-metric',
    {
      config: { role: 'ml-engineer' },
      schema: { tags: TAGS, summary: 'Log a metric point', body: z.object({ ...runRef, key: z.string(), value: double, timestamp: int64.optional(), step: int64.optional() }), response: { 200: empty, ...mlflowErrors } },
    },
    async (req) => {
      const b = req.body;
      await tracking().logMetric(runIdOf(b), { key: b.key, value: b.value, timestamp: b.timestamp ?? Date.now(), step: b.step ?? 0 }, contextOf(req));
      return {};
    },
  );

  const logParam = {
    config: { role: 'ml-engineer' as const },
    schema: {
      tags: TAGS,
      summary: 'Log a param (immutable once logged)',
      body: z.object({ ...runRef, key: z.string(), value: z.union([z.string(), z.number(), z.boolean()]).transform(String) }),
      response: { 200: empty, ...mlflowErrors },
    },
  };
  for (const path of ['/runs/log-parameter', '/runs/log-param']) {
    app.post(path, logParam, async (req) => {
      await tracking().logParam(runIdOf(req.body), { key: req.body.key, value: req.body.value }, contextOf(req));
      return {};
    });
  }

  app.post(
    '/runs/set-tag',
    {
      config: { role: 'ml-engineer' },
      schema: { tags: TAGS, summary: 'Set a run tag', body: z.object({ ...runRef, key: z.string(), value: z.union([z.string(), z.number(), z.boolean()]).transform(String) }), response: { 200: empty, ...mlflowErrors } },
    },
    async (req) => {
      await tracking().setTag(runIdOf(req.body), { key: req.body.key, value: req.body.value }, contextOf(req));
      return {};
    },
  );

  app.post(
    '/runs/delete-tag',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Delete a run tag', body: z.object({ run_id: z.string(), key: z.string() }), response: { 200: empty, ...mlflowErrors } } },
    async (req) => {
      await tracking().deleteTag(req.body.run_id, req.body.key, contextOf(req));
      return {};
    },
  );

  app.post(
    '/runs/log-batch',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Log metrics, params and tags at once (at most 1000 metrics, 100 params, 100 tags)',
        body: z.object({ run_id: z.string(), metrics: z.array(metricInput).optional(), params: z.array(keyValue).optional(), tags: z.array(keyValue).optional() }),
        response: { 200: empty, ...mlflowErrors },
      },
    },
    async (req) => {
      const b = req.body;
      const now = Date.now();
      await tracking().logBatch(
        b.run_id,
        { metrics: (b.metrics ?? []).map((m) => ({ key: m.key, value: m.value, timestamp: m.timestamp ?? now, step: m.step ?? 0 })), params: b.params, tags: b.tags },
        contextOf(req),
      );
      return {};
    },
  );

  app.post(
    '/runs/log-model',
    {
      config: { role: 'ml-engineer' },
      schema: { tags: TAGS, summary: "Record a logged model's MLmodel JSON on the run (tag mlflow.log-model.history)", body: z.object({ run_id: z.string(), model_json: z.string() }), response: { 200: empty, ...mlflowErrors } },
    },
    async (req) => {
      await tracking().recordLoggedModel(req.body.run_id, req.body.model_json, contextOf(req));
      return {};
    },
  );

  app.post(
    '/runs/log-inputs',
    {
      config: { role: 'ml-engineer' },
      schema: { tags: TAGS, summary: 'Log dataset inputs of a run', body: z.object({ run_id: z.string(), datasets: z.array(datasetInputBody).optional() }), response: { 200: empty, ...mlflowErrors } },
    },
    async (req) => {
      const datasets = (req.body.datasets ?? []).map((d) => ({ tags: d.tags ?? [], dataset: d.dataset }));
      await tracking().logInputs(req.body.run_id, datasets, contextOf(req));
      return {};
    },
  );

  app.get(
    '/metrics/get-history',
    {
      config: { role: 'viewer' },
      serializerCompiler: plainJson,
      schema: {
        tags: TAGS,
        summary: 'All logged points of one metric',
        querystring: z.object({ ...runRef, metric_key: z.string(), max_results: maxResults, page_token: z.string().optional() }),
        response: { 200: z.object({ metrics: z.array(mlflowMetric), next_page_token: z.string().optional() }), ...mlflowErrors },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await tracking().store.getMetricHistory(runIdOf(q), q.metric_key, { pageSize: q.max_results, pageToken: q.page_token });
      return withToken({ metrics: page.items.map(toMlflowMetric) }, page.nextPageToken);
    },
  );

  app.get(
    '/artifacts/list',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: "List a run's artifacts",
        querystring: z.object({ ...runRef, path: z.string().optional(), page_token: z.string().optional() }),
        response: {
          200: z.object({ root_uri: z.string(), files: z.array(z.object({ path: z.string(), is_dir: z.boolean(), file_size: z.number().optional() })) }),
          ...mlflowErrors,
        },
      },
    },
    async (req) => {
      const runId = runIdOf(requestFields(req) as { run_id?: string; run_uuid?: string });
      const run = await tracking().store.getRun(runId);
      return { root_uri: run.info.artifact_uri, files: await tracking().store.listArtifacts(runId, req.query.path ?? '') };
    },
  );
};
