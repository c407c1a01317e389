import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses, isJsonRequest } from '../../core/http/index.js';
import { AppError } from '../../core/errors.js';
import type { ExplainService, Explanation, SaliencyMap } from '../service/explain-service.js';
import { readSingleImage } from './http.js';
import { EXPLAIN_CONSUMES, explainJsonBody, explainQuery, explanationSchema } from './schemas.js';

const TAGS = ['explain'];
export function toExplanationView(e: Explanation): z.infer<typeof explanationSchema> {
  const map = (m: SaliencyMap) => ({ method: m.method, h: m.h, w: m.w, grid: m.grid, png_base64: m.png.toString('base64') });
  return {
    prediction_id: e.predictionId,
    model: { name: e.model, version: e.version },
    probability: e.probability,
    threshold: e.threshold,
    image_sha256: e.imageSha256,
    heatmap: map(e.heatmap),
    occlusion: { ...map(e.occlusion), patch: e.occlusion.patch, stride: e.occlusion.stride, baseline: e.occlusion.baseline },
    agreement: e.agreement,
  };
}

export function explainRoutes(app: FastifyInstance, explain: ExplainService): void {
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
          'Explanations of uploads are audited (explain.create) but not logged as predictions.',
        consumes: EXPLAIN_CONSUMES,
        body: z.any().describe('JSON {prediction_id, patch?, stride?}, or the image'),
        querystring: explainQuery,
        response: { 200: explanationSchema, ...errorResponses },
      },
    },
    async (req) => {
      const caller = { actor: req.principal?.name ?? 'anonymous', requestId: req.id };
      const q = req.query;
      if (isJsonRequest(req)) {
        const parsed = explainJsonBody.safeParse(req.body);
        if (!parsed.success) {
          throw new AppError('INVALID_INPUT', `send JSON {"prediction_id": "…"} or an image: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
        }
        const b = parsed.data;
        const options = { ...(b.patch ?? q.patch ? { patch: b.patch ?? q.patch } : {}), ...(b.stride ?? q.stride ? { stride: b.stride ?? q.stride } : {}) };
        return toExplanationView(await explain.explainPrediction(b.prediction_id, caller, options));
      }
      const image = await readSingleImage(req);
      const options = { ...(q.patch ? { patch: q.patch } : {}), ...(q.stride ? { stride: q.stride } : {}) };
      return toExplanationView(await explain.explainImage(image, { model: q.model ?? null, version: q.version ?? null }, caller, options));
    },
  );
}
