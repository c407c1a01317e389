import type { FastifyInstance } from 'fastify';
import type { Platform } from './core/platform.js';
import type { ServiceName } from './core/config/index.js';

/**
 * How to build each service's app; loaded lazily so a single service loads its own code (and other
 * services' clients only — see .dependency-cruiser.cjs).
 */
export const SERVICE_BUILDERS: Record<ServiceName, (platform: Platform) => Promise<FastifyInstance>> = {
  'data-pipeline': async (p) => (await import('./data-pipeline/app.js')).buildDataPipelineApp(p),
  training: async (p) => (await import('./training/app.js')).buildTrainingApp(p),
  'model-registry': async (p) => (await import('./model-registry/app.js')).buildModelRegistryApp(p),
  deployment: async (p) => (await import('./deployment/app.js')).buildDeploymentApp(p),
  monitoring: async (p) => (await import('./monitoring/app.js')).buildMonitoringApp(p),
};
