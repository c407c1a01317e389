import type { FastifyPluginAsync } from 'fastify';
import { installMlflowErrorHandlers } from './common.js';
import { mlflowTrackingRoutes } from './tracking.js';
import { mlflowRegistryRoutes } from './registry.js';
import { mlflowArtifactRoutes } from './artifacts.js';

/** /api/2.0/mlflow/*: MLflow's REST API (subset), answering MLflow's error format. */
export const mlflowApi: FastifyPluginAsync = async (app) => {
  installMlflowErrorHandlers(app);
  await app.register(mlflowTrackingRoutes);
  await app.register(mlflowRegistryRoutes);
};

/** /api/2.0/mlflow-artifacts/*: MLflow's artifact proxy. */
export const mlflowArtifactsApi: FastifyPluginAsync = async (app) => {
  installMlflowErrorHandlers(app);
  await app.register(mlflowArtifactRoutes);
};
