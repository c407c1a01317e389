import type { FastifyInstance } from 'fastify';
import type { Platform } from '../core/platform.js';
import { createServiceApp } from '../core/http/index.js';
import plugin from './plugin.js';

export const SERVICE = {
  name: 'model-registry',
  title: 'xray-mlops model registry',
  description: 'Experiment tracking (MLflow REST 2.0 subset), model versions, stages and aliases, lineage, model cards.',
} as const;

export function buildModelRegistryApp(platform: Platform): Promise<FastifyInstance> {
  return createServiceApp({ ...SERVICE, platform, plugin });
}
