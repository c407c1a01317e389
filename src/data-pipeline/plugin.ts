import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import type { ServicePluginOptions } from '../core/http/index.js';
import { DATA_PIPELINE_LOCAL_KEY } from './client/types.js';
import { dataContext } from './service/context.js';
import { LocalDataPipelineClient } from './service/local-client.js';
import { ensureImportWorker } from './service/import.js';
import { imageRoutes } from './routes/images.js';
import { ingestRoutes } from './routes/ingest.js';
import { preprocessRoutes } from './routes/preprocess.js';
import { validateRoutes } from './routes/validate.js';
import { versionRoutes } from './routes/versions.js';
import { dicomwebRoutes } from './routes/dicomweb.js';
import { AutoPredictor } from './service/auto-predict.js';
import { startDimseScp } from './service/dimse-scp.js';

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
  // Embedded mode: the other services in this process reach this data pipeline without HTTP.
  const withdrawClient = platform.local.provide(DATA_PIPELINE_LOCAL_KEY, new LocalDataPipelineClient(ctx));
  app.addHook('onClose', async () => withdrawClient());

  // PACS connectivity: DICOMweb (STOW-RS, QIDO-RS), the C-STORE SCP, auto-predict on arrival.
  const dicom = platform.config.dicomNetwork;
  const autoPredict =
    dicom.autoPredictModel && dicom.resultDestination
      ? new AutoPredictor(ctx, {
          model: dicom.autoPredictModel,
          destination: dicom.resultDestination,
          deploymentUrl: platform.config.serviceUrls.deployment,
          apiKey: dicom.autoPredictKey,
          callingAeTitle: dicom.aeTitle,
          attempts: dicom.autoPredictAttempts,
          backoffMs: dicom.autoPredictBackoffMs,
        })
      : null;
  await autoPredict?.start();
  dicomwebRoutes(app, ctx, autoPredict);
  const scp = dicom.dimsePort
    ? await startDimseScp(ctx, {
        host: platform.config.host,
        port: dicom.dimsePort,
        aeTitle: dicom.aeTitle,
        allowedCallingAes: dicom.allowedCallingAes,
        keepOriginal: autoPredict !== null,
        ...(autoPredict ? { onArrival: (arrival, calling) => autoPredict.submit(arrival, { channel: 'c-store', actor: `dimse:${calling}` }) } : {}),
      })
    : null;
  app.addHook('onClose', async () => {
    await scp?.close();
    await autoPredict?.close();
  });
};

export default fp(plugin, { name: 'data-pipeline', fastify: '5.x', dependencies: ['auth', 'metrics'], encapsulate: true });
