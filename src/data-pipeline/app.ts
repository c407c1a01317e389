import type { FastifyInstance } from 'fastify';
import type { Platform } from '../core/platform.js';
import { createServiceApp } from '../core/http/index.js';
import plugin from './plugin.js';

export const SERVICE = {
  name: 'data-pipeline',
  title: 'xray-mlops data pipeline',
  description: 'Ingest, validate, DICOM, preprocessing and immutable dataset versions.',
} as const;

export function buildDataPipelineApp(platform: Platform): Promise<FastifyInstance> {
  return createServiceApp({ ...SERVICE, platform, plugin });
}
