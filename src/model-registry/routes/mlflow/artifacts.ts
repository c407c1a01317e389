import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../../core/errors.js';
import { storedBytesHeaders } from '../../../core/http/safe-content.js';
import { contextOf, mlflowErrors } from './common.js';

const TAGS = ['mlflow artifacts'];

/** `<experiment_id>/<run_id>/artifacts/<path>`: the layout behind a run's `mlflow-artifacts:/…` artifact_uri. */
function parseArtifactPath(raw: string): { runId: string; path: string } {
  const m = /^[^/]+\/([0-9a-f]{32})\/artifacts(?:\/(.*))?$/.exec(raw.replace(/^\/+/, '').replace(/\/+$/, ''));
  if (!m) throw new AppError('INVALID_INPUT', `'${raw}' is not a run artifact path (<experiment_id>/<run_id>/artifacts/<path>)`);
  return { runId: m[1]!, path: m[2] ?? '' };
}

/**
 * MLflow's artifact proxy (`mlflow server --serve-artifacts`), so `mlflow.log_artifact()` and
 * downloads work against this server. Bytes go to the object store content-addressed; the run's
 * artifact table maps paths to them. Mounted under /api/2.0/mlflow-artifacts.
 */
export const mlflowArtifactRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const store = () => app.modelRegistry.tracking.store;
  // Artifacts are any bytes, whatever content type the client claims (JSON files included).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: app.platform.config.maxUploadBytes }, (_req, body, done) => done(null, body));

  app.put(
    '/artifacts/*',
    { config: { role: 'ml-engineer' }, schema: { tags: TAGS, summary: 'Upload a run artifact', response: { 200: z.object({}), ...mlflowErrors } } },
    async (req) => {
      const { runId, path } = parseArtifactPath((req.params as { '*': string })['*']);
      if (!path) throw new AppError('INVALID_INPUT', 'an artifact path under artifacts/ is required');
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      await app.modelRegistry.tracking.putArtifact(runId, path, body, contextOf(req));
      return {};
    },
  );

  app.get(
    '/artifacts/*',
    { config: { role: 'viewer' }, schema: { tags: TAGS, summary: 'Download a run artifact', hide: false } },
    async (req, reply) => {
      const { runId, path } = parseArtifactPath((req.params as { '*': string })['*']);
      const artifact = await store().getArtifact(runId, path);
      const stream = await app.platform.objects.getStream(artifact.object_key);
      void storedBytesHeaders(reply, 'application/octet-stream', path).header('content-length', String(artifact.size));
      return reply.send(stream);
    },
  );

  app.get(
    '/artifacts',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'List run artifacts under a path',
        querystring: z.object({ path: z.string().optional() }),
        response: { 200: z.object({ files: z.array(z.object({ path: z.string(), is_dir: z.boolean(), file_size: z.number().optional() })) }), ...mlflowErrors },
      },
    },
    async (req) => {
      const { runId, path } = parseArtifactPath(req.query.path ?? '');
      const listing = await store().listArtifacts(runId, path);
      const prefix = path ? `${path}/` : '';
      return { files: listing.map((f) => ({ ...f, path: f.path.slice(prefix.length) })) };
    },
  );
};
