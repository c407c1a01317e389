import { availableParallelism } from 'node:os';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { ServicePluginOptions } from '../core/http/index.js';
import { sharedImagePool } from '../core/imaging/image-pool.js';
import { dataPipelineClient } from '../data-pipeline/client/index.js';
import { DEPLOYMENT_LOCAL_KEY, PREDICTION_QUERIES_LOCAL_KEY, type DeploymentClient } from './client/types.js';
import { DataPlane } from './dataplane.js';
import { ModelRepository } from './model-repository.js';
import { predictRoutes } from './routes/predict.js';
import { explainRoutes, toExplanationView } from './routes/explain.js';
import { predictionQueryRoutes } from './routes/prediction-queries.js';
import { modelRoutes } from './routes/models.js';
import { v2Routes } from './routes/v2.js';
import { AbRouter } from './service/ab-router.js';
import { HeatmapStore } from './service/heatmaps.js';
import { ExplainService } from './service/explain-service.js';
import { StorePredictionQueries } from './service/prediction-queries.js';
import { DeploymentMetrics } from './service/metrics.js';
import { ModelManager } from './service/model-manager.js';
import { PredictionRecorder } from './service/prediction-recorder.js';
import { openRegistrySource } from './service/registry-source.js';
import { ResultCache } from './service/result-cache.js';
import { StoredImages } from './service/stored-images.js';
import { KyselyPredictionStore } from './store/prediction-store.js';
import { KyselyRoutingStore } from './store/routing-store.js';

/**
 * Deployment service: predictions on ONNX Runtime with dynamic batching, A/B and shadow routing,
 * a result cache, heatmaps, prediction logging for monitoring, and the Open Inference Protocol v2.
 */
const plugin: FastifyPluginAsync<ServicePluginOptions> = async (app, { platform }) => {
  const { config, logger } = platform;
  const log = logger.child({ service: 'deployment' });
  const defaultModel = config.defaultModel;

  const metrics = new DeploymentMetrics(app.metrics);
  const router = new AbRouter();
  const predictions = new KyselyPredictionStore(platform.database);
  const recorder = new PredictionRecorder(predictions, { events: platform.events, logger: log });
  const unregisterRecorder = platform.durability.register(recorder.writer);
  const pool = sharedImagePool(platform);
  const source = openRegistrySource(platform);
  const repository = new ModelRepository({
    logger: log,
    metrics,
    source,
    // Half the cores by default: the decode workers run beside inference, and two intra-op threads
    // fighting them on 2 cores cost more CPU per request than one (bench:serve, TRAINING.md).
    threads: config.inferenceThreads || Math.max(1, Math.floor(availableParallelism() / 2)),
    allowedRoots: [config.importRoot, config.home],
    defaultName: defaultModel,
    isPinned: (name, version) => router.pinned(name).has(version),
  });
  const manager = new ModelManager({
    repository,
    router,
    routingStore: new KyselyRoutingStore(platform.database),
    events: platform.events,
    audit: platform.audit,
    logger: log,
    defaultModel,
  });
  const heatmaps = new HeatmapStore(platform.objects, platform.cache);
  const dataplane = new DataPlane({
    repository,
    router,
    pool,
    heatmaps,
    results: new ResultCache(platform.cache, { hit: () => metrics.cacheLookups.inc({ result: 'hit' }), miss: () => metrics.cacheLookups.inc({ result: 'miss' }) }),
    recorder,
    predictions,
    audit: platform.audit,
    metrics,
    logger: log,
    images: new StoredImages(dataPipelineClient(platform)),
    defaultModel,
  });

  const warming = pool.warmUp();

  let closed = false;
  const shutdown = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await warming;
    await manager.stop();
    await dataplane.settle();
    await repository.close();
    await recorder.flush().catch((err: unknown) => log.error({ err }, 'flushing prediction records failed'));
    unregisterRecorder();
  };
  app.addHook('onClose', shutdown);
  platform.onClose(() => recorder.flush().catch(() => {}));

  await app.register(predictRoutes, { dataplane });
  await app.register(modelRoutes, { manager });
  await app.register(v2Routes, { dataplane });
  const explainer = new ExplainService({ platform, logger: log, serving: repository, source, pool, predictions, heatmaps });
  app.addHook('onClose', async () => explainer.close());
  explainRoutes(app, explainer);
  const queries = new StorePredictionQueries(platform.database, predictions);
  predictionQueryRoutes(app, queries);
  const withdrawQueries = platform.local.provide(PREDICTION_QUERIES_LOCAL_KEY, queries);
  app.addHook('onClose', async () => withdrawQueries());

  // Embedded mode: the other services in this process reach this deployment without HTTP.
  const local: DeploymentClient = {
    target: 'in-process',
    canary: (name, version, ctx = {}) => manager.canary(name, String(version), { actor: ctx.actor ?? 'system', requestId: ctx.requestId ?? null }),
    explain: async (request, ctx = {}) => {
      const caller = { actor: ctx.actor ?? 'system', requestId: ctx.requestId ?? null };
      const options = { ...(request.patch ? { patch: request.patch } : {}), ...(request.stride ? { stride: request.stride } : {}) };
      const e =
        'predictionId' in request
          ? await explainer.explainPrediction(request.predictionId, caller, options)
          : await explainer.explainImage(request.image, { model: request.model ?? null, version: request.version ?? null }, caller, options);
      return toExplanationView(e);
    },
  };
  const withdraw = platform.local.provide(DEPLOYMENT_LOCAL_KEY, local);
  app.addHook('onClose', async () => withdraw());

  // Not ready while the default model's first load is in progress, so a load balancer or Kubernetes
  // sends a restarted replica nothing it would have to refuse.
  app.readiness.set('models', async () => !manager.startingUp);
  await manager.start();
};

export default fp(plugin, { name: 'deployment', fastify: '5.x', dependencies: ['auth', 'service-identity', 'metrics'], encapsulate: true });
