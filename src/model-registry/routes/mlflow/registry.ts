import type { FastifyPluginAsync } from 'fastify';
import { forwardedCredential } from '../../../core/auth/index.js';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../../core/errors.js';
import { STAGES, type Stage } from '../../store/registry-store.js';
import { parseRunSource } from '../../service/registry-service.js';
import {
  actorOf,
  empty,
  keyValue,
  maxResults,
  mlflowErrors,
  mlflowModelVersion,
  mlflowRegisteredModel,
  parseRequest,
  repeated,
  requestFields,
  toMlflowModelVersion,
  toMlflowRegisteredModel,
  versionNumber,
  withToken,
} from './common.js';

const TAGS = ['mlflow model registry'];
const name = z.string().min(1);
const versionField = z.union([z.string(), z.number()]);

/** MLflow's stage names are case-insensitive on input ('production' → 'Production'). */
function stageOf(raw: string): Stage {
  const found = STAGES.find((s) => s.toLowerCase() === raw.trim().toLowerCase());
  if (!found) throw new AppError('INVALID_INPUT', `Invalid Model Version stage: ${raw}. Value must be one of ${STAGES.join(', ')}.`);
  return found;
}

/** MLflow REST 2.0 registered-model, model-version and alias endpoints (mounted under /api/2.0/mlflow). */
export const mlflowRegistryRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const service = () => app.modelRegistry;
  const store = () => app.modelRegistry.registry;
  const modelResponse = { 200: z.object({ registered_model: mlflowRegisteredModel }), ...mlflowErrors };
  const versionResponse = { 200: z.object({ model_version: mlflowModelVersion }), ...mlflowErrors };

  // ── registered models ─────────────────────────────────────────────────────────────────────
  app.post(
    '/registered-models/create',
    {
      config: { role: 'ml-engineer' },
      schema: { tags: TAGS, summary: 'Create a registered model', body: z.object({ name, tags: z.array(keyValue).optional(), description: z.string().optional() }), response: modelResponse },
    },
    async (req) => {
      const model = await service().createRegisteredModel({ name: req.body.name, description: req.body.description, tags: req.body.tags, actor: actorOf(req), requestId: req.id });
      return { registered_model: toMlflowRegisteredModel(model) };
    },
  );

  app.get(
    '/registered-models/get',
    { config: { role: 'viewer' }, schema: { tags: TAGS, summary: 'Get a registered model', querystring: z.object({ name }), response: modelResponse } },
    async (req) => ({ registered_model: toMlflowRegisteredModel(await store().getRegisteredModel(req.query.name)) }),
  );

  app.post(
    '/registered-models/rename',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Rename a registered model', body: z.object({ name, new_name: name }), response: modelResponse } },
    async (req) => {
      const model = await service().renameRegisteredModel({ name: req.body.name, newName: req.body.new_name, actor: actorOf(req), requestId: req.id });
      return { registered_model: toMlflowRegisteredModel(model) };
    },
  );

  app.patch(
    '/registered-models/update',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: "Update a registered model's description", body: z.object({ name, description: z.string().optional() }), response: modelResponse } },
    async (req) => ({ registered_model: toMlflowRegisteredModel(await store().updateRegisteredModel(req.body.name, { description: req.body.description })) }),
  );

  app.delete(
    '/registered-models/delete',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Delete a registered model (its versions are soft-deleted)', response: { 200: empty, ...mlflowErrors } } },
    async (req) => {
      const b = parseRequest(z.object({ name }), requestFields(req));
      await service().deleteRegisteredModel({ name: b.name, actor: actorOf(req), requestId: req.id });
      return {};
    },
  );

  app.get(
    '/registered-models/search',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: "Search registered models (filter: name LIKE '%x%', tags.k = 'v')",
        querystring: z.object({ filter: z.string().optional(), max_results: maxResults, order_by: repeated, page_token: z.string().optional() }),
        response: { 200: z.object({ registered_models: z.array(mlflowRegisteredModel), next_page_token: z.string().optional() }), ...mlflowErrors },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await store().searchRegisteredModels({ filter: q.filter, orderBy: q.order_by, pageSize: q.max_results, pageToken: q.page_token });
      return withToken({ registered_models: page.items.map(toMlflowRegisteredModel) }, page.nextPageToken);
    },
  );

  const latestVersions = z.object({ name, stages: repeated });
  const latestHandler = async (fields: unknown) => {
    const b = parseRequest(latestVersions, fields);
    const model = await store().getRegisteredModel(b.name);
    const stages = b.stages.map(stageOf);
    return { model_versions: model.latest_versions.filter((v) => stages.length === 0 || stages.includes(v.current_stage)).map(toMlflowModelVersion) };
  };
  const latestResponse = { 200: z.object({ model_versions: z.array(mlflowModelVersion) }), ...mlflowErrors };
  app.post('/registered-models/get-latest-versions', { config: { role: 'viewer' }, schema: { tags: TAGS, summary: 'Latest version per stage', response: latestResponse } }, async (req) =>
    latestHandler(req.body),
  );
  app.get('/registered-models/get-latest-versions', { config: { role: 'viewer' }, schema: { tags: TAGS, summary: 'Latest version per stage', response: latestResponse } }, async (req) =>
    latestHandler(req.query),
  );

  app.post(
    '/registered-models/set-tag',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Set a registered model tag', body: z.object({ name, key: z.string().min(1), value: z.string() }), response: { 200: empty, ...mlflowErrors } } },
    async (req) => {
      await store().setRegisteredModelTag(req.body.name, { key: req.body.key, value: req.body.value });
      return {};
    },
  );

  app.delete(
    '/registered-models/delete-tag',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Delete a registered model tag', response: { 200: empty, ...mlflowErrors } } },
    async (req) => {
      const b = parseRequest(z.object({ name, key: z.string().min(1) }), requestFields(req));
      await store().deleteRegisteredModelTag(b.name, b.key);
      return {};
    },
  );

  // ── aliases ───────────────────────────────────────────────────────────────────────────────
  app.post(
    '/registered-models/alias',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: "Point an alias at a version ('production' and 'staging' go through the promotion gate)",
        body: z.object({ name, alias: z.string().min(1), version: versionField }),
        response: { 200: empty, ...mlflowErrors },
      },
    },
    async (req) => {
      await service().setAlias({ name: req.body.name, alias: req.body.alias, version: versionNumber(req.body.version), actor: actorOf(req), requestId: req.id, authorization: forwardedCredential(req) });
      return {};
    },
  );

  app.delete(
    '/registered-models/alias',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Delete an alias', response: { 200: empty, ...mlflowErrors } } },
    async (req) => {
      const b = parseRequest(z.object({ name, alias: z.string().min(1) }), requestFields(req));
      await service().deleteAlias({ name: b.name, alias: b.alias, actor: actorOf(req), requestId: req.id });
      return {};
    },
  );

  app.get(
    '/registered-models/alias',
    { config: { role: 'viewer' }, schema: { tags: TAGS, summary: 'Get the version an alias points at', querystring: z.object({ name, alias: z.string().min(1) }), response: versionResponse } },
    async (req) => {
      const version = await store().getAlias(req.query.name, req.query.alias);
      return { model_version: toMlflowModelVersion(await store().getModelVersion(req.query.name, version)) };
    },
  );

  // ── model versions ────────────────────────────────────────────────────────────────────────
  app.post(
    '/model-versions/create',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Create a model version (a runs:/ source naming an ONNX artifact is validated and made servable)',
        body: z.object({ name, source: z.string().min(1), run_id: z.string().optional(), tags: z.array(keyValue).optional(), run_link: z.string().optional(), description: z.string().optional() }),
        response: versionResponse,
      },
    },
    async (req) => {
      const b = req.body;
      const version = await service().createVersionFromSource({
        name: b.name,
        source: b.source,
        runId: b.run_id,
        description: b.description,
        tags: b.tags,
        runLink: b.run_link,
        actor: actorOf(req),
        requestId: req.id,
      });
      return { model_version: toMlflowModelVersion(version) };
    },
  );

  app.get(
    '/model-versions/get',
    { config: { role: 'viewer' }, schema: { tags: TAGS, summary: 'Get a model version', querystring: z.object({ name, version: z.string() }), response: versionResponse } },
    async (req) => ({ model_version: toMlflowModelVersion(await store().getModelVersion(req.query.name, versionNumber(req.query.version))) }),
  );

  app.patch(
    '/model-versions/update',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: "Update a version's description", body: z.object({ name, version: versionField, description: z.string().optional() }), response: versionResponse } },
    async (req) => ({ model_version: toMlflowModelVersion(await store().updateModelVersion(req.body.name, versionNumber(req.body.version), { description: req.body.description })) }),
  );

  app.delete(
    '/model-versions/delete',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Delete a model version (soft delete; hard delete is DELETE /models/{name}/versions/{v}?hard=true)', response: { 200: empty, ...mlflowErrors } } },
    async (req) => {
      const b = parseRequest(z.object({ name, version: versionField }), requestFields(req));
      await service().deleteVersion({ name: b.name, version: versionNumber(b.version), actor: actorOf(req), requestId: req.id });
      return {};
    },
  );

  app.get(
    '/model-versions/search',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: "Search model versions (filter: name = 'x', run_id = '…', tags.k = 'v')",
        querystring: z.object({ filter: z.string().optional(), max_results: maxResults, order_by: repeated, page_token: z.string().optional() }),
        response: { 200: z.object({ model_versions: z.array(mlflowModelVersion), next_page_token: z.string().optional() }), ...mlflowErrors },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await store().searchModelVersions({ filter: q.filter, orderBy: q.order_by, pageSize: q.max_results, pageToken: q.page_token });
      return withToken({ model_versions: page.items.map(toMlflowModelVersion) }, page.nextPageToken);
    },
  );

  app.post(
    '/model-versions/transition-stage',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Move a version to a stage (Production passes the promotion gate; one version per serving stage)',
        body: z.object({ name, version: versionField, stage: z.string(), archive_existing_versions: z.boolean().optional() }),
        response: versionResponse,
      },
    },
    async (req) => {
      const result = await service().setStage({ name: req.body.name, version: versionNumber(req.body.version), stage: stageOf(req.body.stage), actor: actorOf(req), requestId: req.id, authorization: forwardedCredential(req) });
      return { model_version: toMlflowModelVersion(result.version) };
    },
  );

  app.post(
    '/model-versions/set-tag',
    {
      config: { role: 'ml-engineer' },
      schema: { tags: TAGS, summary: 'Set a model version tag', body: z.object({ name, version: versionField, key: z.string().min(1), value: z.string() }), response: { 200: empty, ...mlflowErrors } },
    },
    async (req) => {
      await store().setModelVersionTag(req.body.name, versionNumber(req.body.version), { key: req.body.key, value: req.body.value });
      return {};
    },
  );

  app.delete(
    '/model-versions/delete-tag',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Delete a model version tag', response: { 200: empty, ...mlflowErrors } } },
    async (req) => {
      const b = parseRequest(z.object({ name, version: versionField, key: z.string().min(1) }), requestFields(req));
      await store().deleteModelVersionTag(b.name, versionNumber(b.version), b.key);
      return {};
    },
  );

  app.get(
    '/model-versions/get-download-uri',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: "Where a version's files are", querystring: z.object({ name, version: z.string() }), response: { 200: z.object({ artifact_uri: z.string() }), ...mlflowErrors } },
    },
    async (req) => {
      const v = await store().getModelVersion(req.query.name, versionNumber(req.query.version));
      // A version registered from a run points into that run's artifacts, which MLflow clients download through the proxy.
      const fromRun = parseRunSource(v.source);
      const run = fromRun ? await service().tracking.store.getRun(fromRun.runId).catch(() => null) : null;
      if (fromRun && run) {
        const dir = fromRun.path.includes('/') ? fromRun.path.slice(0, fromRun.path.lastIndexOf('/')) : fromRun.path.endsWith('.onnx') ? '' : fromRun.path;
        return { artifact_uri: dir ? `${run.info.artifact_uri}/${dir}` : run.info.artifact_uri };
      }
      return { artifact_uri: v.source };
    },
  );
};
