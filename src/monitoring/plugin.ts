import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { ServicePluginOptions } from '../core/http/index.js';
import { createMonitoringContext } from './service/context.js';
import { driftRoutes } from './routes/drift.js';
import { feedbackRoutes } from './routes/feedback.js';
import { alertRoutes } from './routes/alerts.js';
import { auditRoutes } from './routes/audit.js';
import { explainRoutes } from './routes/explain.js';
import { timelineRoutes } from './routes/timeline.js';
import { backupRoutes } from './routes/backups.js';
import { keyRoutes } from '../core/auth/key-routes.js';
import { deploymentClient } from '../deployment/client/index.js';

/**
 * Monitoring service: model-level metrics on /metrics, prediction traffic over time, drift
 * detection (on demand and on a schedule), ground-truth feedback, alerts with notification channels, the audit trail and
 * explanations, and backups (on demand for admins and on a schedule).
 */
const plugin: FastifyPluginAsync<ServicePluginOptions> = async (app, { platform }) => {
  const ctx = await createMonitoringContext(platform, app.metrics);
  app.addHook('onClose', async () => ctx.close());
  driftRoutes(app, ctx);
  feedbackRoutes(app, ctx);
  alertRoutes(app, ctx);
  auditRoutes(app, platform.audit);
  // API keys are managed next to the audit trail that records every change to them.
  keyRoutes(app, platform.keys, platform.audit);
  explainRoutes(app, deploymentClient(platform));
  timelineRoutes(app, ctx.predictions);
  // Backups run here, next to the audit trail that records them.
  backupRoutes(app, ctx.backups);
};

export default fp(plugin, { name: 'monitoring', fastify: '5.x', dependencies: ['auth', 'metrics'], encapsulate: true });
