import { preferLocal } from '../../core/local-services.js';
import type { Platform } from '../../core/platform.js';
import { HttpDeploymentClient } from './http-client.js';
import { HttpPredictionQueries } from './http-predictions.js';
import { DEPLOYMENT_LOCAL_KEY, PREDICTION_QUERIES_LOCAL_KEY, type DeploymentClient, type PredictionQueries } from './types.js';

export * from './types.js';
export { HttpDeploymentClient } from './http-client.js';

/**
 * The deployment client for this platform, decided per call: the in-process deployment when one
 * runs in this process (embedded mode), else HTTP to XRAY_SERVICE_URLS' deployment URL.
 */
export function deploymentClient(platform: Platform): DeploymentClient {
  return preferLocal(platform.local, DEPLOYMENT_LOCAL_KEY, new HttpDeploymentClient(platform.config.serviceUrls.deployment, { transport: platform.transport }));
}

/**
 * The deployment's prediction queries for this platform (monitoring's only way to read prediction
 * records): in-process when the deployment runs here, else its internal HTTP routes.
 */
export function predictionQueries(platform: Platform): PredictionQueries {
  return preferLocal(platform.local, PREDICTION_QUERIES_LOCAL_KEY, new HttpPredictionQueries(platform.config.serviceUrls.deployment, { transport: platform.transport }));
}
