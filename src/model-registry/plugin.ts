import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { ServicePluginOptions } from '../core/http/index.js';
import { MODEL_REGISTRY_LOCAL_KEY } from './client/types.js';
import { LocalModelRegistryClient } from './service/local-client.js';
import { ModelRegistryService } from './service/registry-service.js';
import { mlflowApi as mlflowRoutes, mlflowArtifactsApi as mlflowArtifactRoutes } from './routes/mlflow/index.js';
import { modelRoutes as registryRoutes } from './routes/models.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The model registry (stores, gate, lineage, cards), shared by this service's routes. */
    modelRegistry: ModelRegistryService;
  }
}

/**
 * The registry behind this service's routes, as the `modelRegistry` decorator (the route plugins
 * declare it as their dependency), and offered to the other services in this process.
 */
const registryService = fp(
  async (app, { platform }: ServicePluginOptions) => {
    const service = new ModelRegistryService(platform);
    await service.tracking.store.ensureDefaultExperiment();
    app.decorate('modelRegistry', service);
    // Embedded mode: the other services in this process reach this registry without HTTP.
    const withdraw = platform.local.provide(MODEL_REGISTRY_LOCAL_KEY, new LocalModelRegistryClient(service));
    app.addHook('onClose', async () => withdraw());
  },
  { name: 'model-registry-service', fastify: '5.x' },
);

// The route plugins read `modelRegistry`: each names the plugin that decorates it.
const routeDependencies = { fastify: '5.x', dependencies: ['model-registry-service'], encapsulate: true };
const mlflowApi = fp(mlflowRoutes, { name: 'mlflow-api', ...routeDependencies });
const mlflowArtifactsApi = fp(mlflowArtifactRoutes, { name: 'mlflow-artifacts-api', ...routeDependencies });
const modelRoutes = fp(registryRoutes, { name: 'model-registry-routes', ...routeDependencies });

/**
 * Model registry routes: MLflow's REST API under /api/2.0/mlflow (+ the artifact proxy under
 * /api/2.0/mlflow-artifacts) with MLflow's error format, and the registry's own endpoints
 * (/models…, /artifacts/gc) with the platform's error envelope.
 */
const plugin: FastifyPluginAsync<ServicePluginOptions> = async (app, opts) => {
  await app.register(registryService, opts);
  await app.register(mlflowApi, { prefix: '/api/2.0/mlflow' });
  await app.register(mlflowArtifactsApi, { prefix: '/api/2.0/mlflow-artifacts' });
  await app.register(modelRoutes);
};

export default fp(plugin, { name: 'model-registry', fastify: '5.x', dependencies: ['auth'], encapsulate: true });
