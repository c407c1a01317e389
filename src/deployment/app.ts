import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { Platform } from '../core/platform.js';
import { createServiceApp, type ServicePluginOptions } from '../core/http/index.js';
import plugin from './plugin.js';
import scoringRoutes from './scoring-plugin.js';

export const SERVICE = {
  name: 'deployment',
  title: 'xray-mlops deployment service',
  description: 'Predictions on ONNX Runtime with dynamic batching, A/B and shadow routing, caching, heatmaps, Open Inference Protocol v2.',
} as const;

const scoringPlugin = fp(scoringRoutes, { name: 'deployment-scoring', fastify: '5.x', dependencies: ['auth', 'service-identity'], encapsulate: true });

/** The serving plugin, then labelled-case scoring (site calibration) beside it: two named plugins. */
const deployment: FastifyPluginAsync<ServicePluginOptions> = async (app, opts) => {
  await app.register(plugin, opts);
  await app.register(scoringPlugin, opts);
};

export function buildDeploymentApp(platform: Platform): Promise<FastifyInstance> {
  return createServiceApp({ ...SERVICE, platform, plugin: deployment });
}
