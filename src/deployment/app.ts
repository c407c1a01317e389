import type { FastifyInstance } from 'fastify';
import type { Platform } from '../core/platform.js';
import { createServiceApp } from '../core/http/index.js';
import plugin from './plugin.js';

export const SERVICE = {
  name: 'deployment',
  title: 'xray-mlops deployment service',
  description: 'Predictions on ONNX Runtime with dynamic batching, A/B and shadow routing, caching, heatmaps, Open Inference Protocol v2.',
} as const;

export function buildDeploymentApp(platform: Platform): Promise<FastifyInstance> {
  return createServiceApp({ ...SERVICE, platform, plugin });
}
