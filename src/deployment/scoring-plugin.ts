import type { FastifyPluginAsync } from 'fastify';
import type { ServicePluginOptions } from '../core/http/index.js';
import { sharedImagePool } from '../core/imaging/image-pool.js';
import { dataPipelineClient } from '../data-pipeline/client/index.js';
import { DEPLOYMENT_SCORER_LOCAL_KEY, type DeploymentScorer, type ScoreImage, type ScoreOptions } from './client/scoring.js';
import type { Caller } from './dataplane.js';
import { scoreRoutes } from './routes/score.js';
import { openRegistrySource } from './service/registry-source.js';
import { scoreVersion } from './service/scoring.js';
import { StoredImages } from './service/stored-images.js';

/**
 * Scoring of labelled cases through the serving path (POST /models/score and the in-process
 * scorer other services in this process reach through the deployment client), for the model
 * registry's site calibration. Audited as `model.score`; never recorded as predictions.
 */
const scoringPlugin: FastifyPluginAsync<ServicePluginOptions> = async (app, { platform }) => {
  const log = platform.logger.child({ service: 'deployment' });
  const deps = { source: openRegistrySource(platform), pool: sharedImagePool(platform), images: new StoredImages(dataPipelineClient(platform)), logger: log };
  const score = async (name: string, version: string, images: ScoreImage[], caller: Caller, options: ScoreOptions = {}) => {
    const resource = `model:${name}/${version}`;
    try {
      const report = await scoreVersion(deps, name, version, images, options);
      const failed = report.results.filter((r) => !r.ok).length;
      platform.audit.record({ actor: caller.actor, action: 'model.score', resource, outcome: 'success', requestId: caller.requestId, service: 'deployment', details: { images: images.length, failed, onnx_sha256: report.onnx_sha256 } });
      return report;
    } catch (err) {
      platform.audit.record({ actor: caller.actor, action: 'model.score', resource, outcome: 'failure', requestId: caller.requestId, service: 'deployment', details: { images: images.length, error: (err as Error).message } });
      throw err;
    }
  };
  await app.register(scoreRoutes, { score });
  const local: DeploymentScorer = {
    target: 'in-process',
    score: (name, version, images, ctx = {}, options = {}) => score(name, String(version), images, { actor: ctx.actor ?? 'system', requestId: ctx.requestId ?? null }, options),
  };
  const withdraw = platform.local.provide(DEPLOYMENT_SCORER_LOCAL_KEY, local);
  app.addHook('onClose', async () => withdraw());
};

export default scoringPlugin;
