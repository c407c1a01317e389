import type { FastifyInstance } from 'fastify';
import type { Platform } from '../core/platform.js';
import { createServiceApp } from '../core/http/index.js';
import plugin from './plugin.js';

export const SERVICE = {
  name: 'monitoring',
  title: 'xray-mlops monitoring service',
  description: 'Model metrics, drift detection, alerts, the audit trail and explanations.',
} as const;

export function buildMonitoringApp(platform: Platform): Promise<FastifyInstance> {
  return createServiceApp({ ...SERVICE, platform, plugin });
}
