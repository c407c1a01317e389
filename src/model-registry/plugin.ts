import type { FastifyPluginAsync } from 'fastify';
import type { ServicePluginOptions } from '../core/http/index.js';
import { MODEL_REGISTRY_LOCAL_KEY } from './client/types.js';
import { LocalModelRegistryClient } from './service/local-client.js';
import { ModelRegistryService } from './service/registry-service.js';
import { mlflowApi, mlflowArtifactsApi } from './routes/mlflow/index.js';
import { modelRoutes } from './routes/models.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The model registry (stores, gate, lineage, cards), shared by this service's routes. */
    modelRegistry: ModelRegistryService;
  }
}

/**
 * Model registry routes: MLflow's REST API under /api/2.0/mlflow (+ the artifact proxy under
 * /api/2.0/mlflow-artifacts) with MLflow's error format, and the registry's own endpoints
 * (/models…, /artifacts/gc) with the platform's error envelope.
 */
const plugin: FastifyPluginAsync<ServicePluginOptions> = async (app, { platform }) => {
  const service = new ModelRegistryService(platform);
  await service.tracking.store.ensureDefaultExperiment();
  app.decorate('modelRegistry', service);
  await app.register(mlflowApi, { prefix: '/api/2.0/mlflow' });
  await app.register(mlflowArtifactsApi, { prefix: '/api/2.0/mlflow-artifacts' });
  await app.register(modelRoutes);
  // Embedded mode: the other services in this process reach this registry without HTTP.
  const withdraw = platform.local.provide(MODEL_REGISTRY_LOCAL_KEY, new LocalModelRegistryClient(service));
  app.addHook('onClose', async () => withdraw());
};

export default plugin;
