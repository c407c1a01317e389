import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Platform } from '../core/platform.js';
import { createServiceApp, type ServicePluginOptions } from '../core/http/index.js';
import plugin from './plugin.js';
import scoringPlugin from './scoring-plugin.js';

export const SERVICE = {
  name: 'deployment',
  title: 'xray-mlops deployment service',
  description: 'Predictions on ONNX Runtime with dynamic batching, A/B and shadow routing, caching, heatmaps, Open Inference Protocol v2.',
} as const;

/** The serving plugin, then labelled-case scoring (site calibration) beside it. */
const deployment: FastifyPluginAsync<ServicePluginOptions> = async (app, opts) => {
  await plugin(app, opts);
  await scoringPlugin(app, opts);
};

export function buildDeploymentApp(platform: Platform): Promise<FastifyInstance> {
  return createServiceApp({ ...SERVICE, platform, plugin: deployment });
}
