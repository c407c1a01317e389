import type { FastifyPluginAsync } from 'fastify';
import { Counter } from 'prom-client';
import type { ServicePluginOptions } from '../core/http/index.js';
import { dataContext } from './service/context.js';
import { ensureImportWorker } from './service/import.js';
import { imageRoutes } from './routes/images.js';
import { ingestRoutes } from './routes/ingest.js';
import { preprocessRoutes } from './routes/preprocess.js';
import { validateRoutes } from './routes/validate.js';
import { versionRoutes } from './routes/versions.js';

/**
 * Data pipeline routes: ingest and folder import, validation, preprocessing, dataset versions and
 * export. The import worker starts here so that jobs interrupted by a restart resume.
 */
const plugin: FastifyPluginAsync<ServicePluginOptions> = async (app, { platform }) => {
  const ctx = dataContext(platform);
  const ingested = new Counter({
    name: 'xray_data_ingest_files_total',
    help: 'Files ingested (uploads and folder imports) by outcome and format',
    labelNames: ['status', 'format'],
    registers: [app.metrics],
  });
  const listener = (status: string, format: string | undefined) => ingested.inc({ status, format: format ?? 'unknown' });
  ctx.ingestListeners.add(listener);
  app.addHook('onClose', async () => {
    ctx.ingestListeners.delete(listener);
  });
  ensureImportWorker(ctx);
  ingestRoutes(app, ctx);
  validateRoutes(app, ctx);
  preprocessRoutes(app, ctx);
  versionRoutes(app, ctx);
  imageRoutes(app, ctx);
};

export default plugin;
