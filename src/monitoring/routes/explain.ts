import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { forwardedCredential } from '../../core/auth/index.js';
import { AppError } from '../../core/errors.js';
import { errorResponses, isJsonRequest, readSingleImage } from '../../core/http/index.js';
import type { DeploymentClient } from '../../deployment/client/index.js';
import { EXPLAIN_CONSUMES, explainJsonBody, explainQuery, explanationSchema } from '../../deployment/routes/schemas.js';

const TAGS = ['explain'];
/**
 * POST /explain, where monitoring users look for it: explanations are computed by the deployment's
 * data plane (`DataPlane.explain`) and reached through the deployment client, with the caller's
 * credential — this service loads no model.
 */
export function explainRoutes(app: FastifyInstance, deployment: DeploymentClient): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post(
    '/explain',
    {
      config: { role: 'clinician' },
      schema: {
        tags: TAGS,
        summary: 'Explain a prediction: class-activation heatmap plus occlusion sensitivity',
        description:
          'JSON {prediction_id} explains a logged prediction from its stored heatmap; an image (multipart file or raw PNG/JPEG/DICOM body, with ?model=&version=, ' +
          'default the production version of XRAY_DEFAULT_MODEL) is run through the same data-plane code as /predict. Both maps come as PNG overlays (base64) and raw grids. ' +
          'Computed by the deployment service (its POST /explain); explanations of uploads are audited (explain.create) but not logged as predictions.',
        consumes: EXPLAIN_CONSUMES,
        body: z.any().describe('JSON {prediction_id, patch?, stride?}, or the image'),
        querystring: explainQuery,
        response: { 200: explanationSchema, ...errorResponses },
      },
    },
    async (req) => {
      const ctx = { authorization: forwardedCredential(req), requestId: req.id, actor: req.principal?.name ?? 'anonymous' };
      const q = req.query;
      if (isJsonRequest(req)) {
        const parsed = explainJsonBody.safeParse(req.body);
        if (!parsed.success) {
          throw new AppError('INVALID_INPUT', `send JSON {"prediction_id": "…"} or an image: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
        }
        const b = parsed.data;
        const patch = b.patch ?? q.patch;
        const stride = b.stride ?? q.stride;
        return deployment.explain({ predictionId: b.prediction_id, ...(patch ? { patch } : {}), ...(stride ? { stride } : {}) }, ctx);
      }
      const image = await readSingleImage(req);
      return deployment.explain({ image, model: q.model ?? null, version: q.version ?? null, ...(q.patch ? { patch: q.patch } : {}), ...(q.stride ? { stride: q.stride } : {}) }, ctx);
    },
  );
}
