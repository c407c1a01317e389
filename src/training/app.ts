import type { FastifyInstance } from 'fastify';
import type { Platform } from '../core/platform.js';
import { createServiceApp } from '../core/http/index.js';
import plugin from './plugin.js';

export const SERVICE = {
  name: 'training',
  title: 'xray-mlops training service',
  description: 'Training jobs on the PyTorch worker, hyper-parameter search, experiment runs, evaluation, ONNX export.',
} as const;

export function buildTrainingApp(platform: Platform): Promise<FastifyInstance> {
  return createServiceApp({ ...SERVICE, platform, plugin });
}
