import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { ServicePluginOptions } from '../core/http/index.js';
import { optimizeRoutes } from './routes/optimize.js';
import { trainRoutes } from './routes/train.js';
import { TrainingMetrics } from './service/metrics.js';
import { createRegistrar, createRunTracker } from './service/integrations.js';
import { TrainingService } from './service/training-service.js';
import { KyselyTrainingStore } from './store/training-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The training service behind this app's routes. */
    training: TrainingService;
  }
}

/**
 * Training service routes: /train (jobs), /optimize (studies), /experiments. The worker runtime
 * is looked up lazily, so the service starts (and answers TRAINER_RUNTIME_MISSING) without torch.
 */
const plugin: FastifyPluginAsync<ServicePluginOptions> = async (app, { platform }) => {
  const store = new KyselyTrainingStore(platform.database);
  const service = new TrainingService(platform, {
    store,
    metrics: new TrainingMetrics(app.metrics, () => store.countJobs()),
    tracker: createRunTracker(platform),
    registrar: createRegistrar(platform),
  });
  app.decorate('training', service);
  await service.start();
  // Workers are asked to checkpoint and stop when the app or the platform closes, whichever comes first.
  app.addHook('onClose', async () => service.close());
  platform.onClose(() => service.close());

  await app.register(trainRoutes, { service });
  await app.register(optimizeRoutes, { service });
};

export default fp(plugin, { name: 'training', fastify: '5.x', dependencies: ['auth', 'metrics'], encapsulate: true });
