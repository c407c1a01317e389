import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../../core/http/schemas.js';
import type { LoadedModelInfo } from '../model-repository.js';
import type { ClusterView } from '../service/cluster-state.js';
import type { ModelManager } from '../service/model-manager.js';
import type { RoutingConfig } from '../store/routing-store.js';
import { callerOf } from './http.js';
import { canaryBody, canaryReportSchema, loadBody, modelInfoSchema, modelsResponse, routingBody, routingSchema, unloadBody } from './schemas.js';

export function toModelBody(m: LoadedModelInfo): z.infer<typeof modelInfoSchema> {
  return {
    name: m.name,
    version: m.version,
    alias: m.alias,
    default: m.isDefault,
    state: m.state,
    source: m.source,
    sha256: m.sha256,
    loaded_at: m.loadedAt,
    input: m.input,
    outputs: m.outputs,
    threshold: m.threshold,
    heatmap_method: m.heatmapMethod,
    preprocessing: m.preprocessing,
    batching: { max_batch_size: m.batching.maxBatchSize, max_queue_delay_ms: m.batching.maxQueueDelayMs, max_queue_size: m.batching.maxQueueSize },
    execution_providers: m.executionProviders,
    in_flight: m.inFlight,
    queue_depth: m.queueDepth,
    stats: { batches: m.stats.batches, items: m.stats.items, mean_batch_size: m.stats.meanBatchSize },
    metadata: m.metadata,
  };
}

export function toRoutingBody(r: RoutingConfig): z.infer<typeof routingSchema> {
  return { model: r.model, mode: r.mode, sticky: r.sticky, variants: r.variants, updated_by: r.updatedBy, updated_at: r.updatedAt };
}

/** Model management (load, unload, list) and A/B / shadow routing. */
export const modelRoutes: FastifyPluginAsync<{ manager: ModelManager }> = async (instance, { manager }) => {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  // The cluster view reads the database and asks the registry: computed at most once per 500 ms.
  let memo: { at: number; view: Promise<ClusterView | null> } | null = null;
  const clusterView = (): Promise<ClusterView | null> => {
    if (!memo || Date.now() - memo.at > 500) memo = { at: Date.now(), view: manager.cluster().catch(() => null) };
    return memo.view;
  };

  app.get(
    '/models',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['models'],
        summary: 'Loaded models: version, alias, input spec, batching, statistics; routing; and what every replica serves (cluster: converged or not)',
        response: { 200: modelsResponse, ...errorResponses },
      },
    },
    async () => ({
      default_model: manager.defaultModel,
      models: manager.models().map(toModelBody),
      routing: manager.routing().map(toRoutingBody),
      problems: manager.problems(),
      cluster: await clusterView(),
    }),
  );

  app.post(
    '/models/canary',
    {
      // Internal: the registry's promotion gate calls it with a service token; people promote instead.
      config: { role: 'ml-engineer', internal: true },
      schema: {
        tags: ['models'],
        summary:
          'Canary-load a registered version without serving it: the ONNX file loads, follows the serving contract (input size = recorded preprocessing), warms up, and its reference images give the outputs recorded at training. The promotion gate calls this before the production alias moves.',
        body: canaryBody,
        response: { 200: canaryReportSchema, ...errorResponses },
      },
    },
    async (req) => manager.canary(req.body.name, req.body.version, callerOf(req)),
  );

  app.post(
    '/models/load',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: ['models'],
        summary: 'Load a model version (by version or alias from the registry, or a local ONNX path in development); hot swap without failed requests',
        body: loadBody,
        response: { 200: modelInfoSchema, ...errorResponses },
      },
    },
    async (req) => {
      const b = req.body;
      const batching = b.batching
        ? { maxBatchSize: b.batching.max_batch_size, maxQueueDelayMs: b.batching.max_queue_delay_ms, maxQueueSize: b.batching.max_queue_size }
        : undefined;
      const cleaned = batching ? Object.fromEntries(Object.entries(batching).filter(([, v]) => v !== undefined)) : undefined;
      const info =
        'path' in b
          ? await manager.loadLocal({ path: b.path, name: b.name, version: b.version, batching: cleaned, makeDefault: b.default }, callerOf(req))
          : await manager.load({ name: b.name, version: b.version, alias: b.alias, batching: cleaned, makeDefault: b.default }, callerOf(req));
      return toModelBody(info);
    },
  );

  app.post(
    '/models/unload',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: ['models'],
        summary: 'Unload a model version (or all versions of a model) after its in-flight requests finish',
        body: unloadBody,
        response: { 200: z.object({ name: z.string(), unloaded: z.array(z.string()) }), ...errorResponses },
      },
    },
    async (req) => ({ name: req.body.name, unloaded: await manager.unload(req.body.name, req.body.version, callerOf(req)) }),
  );

  app.get(
    '/routing',
    {
      config: { role: 'viewer' },
      schema: { tags: ['routing'], summary: 'A/B and shadow routing per model', response: { 200: z.object({ routing: z.array(routingSchema) }), ...errorResponses } },
    },
    async () => ({ routing: manager.routing().map(toRoutingBody) }),
  );

  app.post(
    '/routing',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: ['routing'],
        summary: "Set a model's A/B split (weights, sticky by x-client-key) or shadow mirroring (first variant answers, others only logged)",
        body: routingBody,
        response: { 200: routingSchema, ...errorResponses },
      },
    },
    async (req) => toRoutingBody(await manager.setRouting(req.body, callerOf(req))),
  );

  app.delete(
    '/routing/:model',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: ['routing'],
        summary: "Remove a model's routing (its default version serves everything again)",
        params: z.object({ model: z.string().min(1).max(128) }),
        response: { 200: z.object({ model: z.string(), deleted: z.boolean() }), ...errorResponses },
      },
    },
    async (req) => ({ model: req.params.model, deleted: await manager.deleteRouting(req.params.model, callerOf(req)) }),
  );
};
