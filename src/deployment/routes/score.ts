import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { errorResponses } from '../../core/http/schemas.js';
import type { ImageStats } from '../../core/imaging/stats.js';
import { MAX_SCORE_IMAGES, type ScoreImage, type ScoreOptions, type ScoreReport } from '../client/scoring.js';
import type { PredictionStats } from '../store/prediction-store.js';
import { callerOf } from './http.js';

const n = z.number();
const imageStats = { mean: n, std: n, min: n, max: n, p01: n, p99: n, entropy: n, clipLowFrac: n, clipHighFrac: n, laplacianVariance: n, edgeDensity: n } satisfies Record<keyof ImageStats, z.ZodNumber>;

const referenceRow = z.object({
  stats: z.object({ ...imageStats, sourceFormat: z.enum(['png', 'jpeg', 'dicom', 'tensor']), sourceWidth: n, sourceHeight: n }) satisfies z.ZodType<PredictionStats>,
  embedding: z.array(z.number()).nullable(),
});

const scoreResult = z.union([
  z.object({
    ok: z.literal(true),
    raw_probability: z.number(),
    probability: z.number(),
    cam: z.object({ h: z.number(), w: z.number(), grid: z.array(z.number()) }).nullable().optional(),
    reference: referenceRow.optional(),
  }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);

/** The response of POST /models/score (the client's ScoreReport). */
export const scoreReportSchema = z.object({
  name: z.string(),
  version: z.string(),
  onnx_sha256: z.string(),
  threshold: z.number(),
  temperature: z.number().nullable().describe("Site temperature the version serves with; 'probability' has it applied, 'raw_probability' is the file's own output"),
  input_size: z.number(),
  preprocessing_hash: z.string(),
  preprocessing: z.looseObject({}),
  uri: z.string(),
  heatmap_method: z.string(),
  results: z.array(scoreResult),
  duration_ms: z.number(),
}) satisfies z.ZodType<ScoreReport>;

const jsonBody = z.object({
  name: z.string().min(1).max(128),
  version: z.string().regex(/^\d{1,9}$/, 'a registered version number'),
  hashes: z.array(z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 hex digest')).min(1).max(MAX_SCORE_IMAGES),
  cam: z.boolean().optional(),
  reference: z.boolean().optional(),
});

async function readMultipart(req: FastifyRequest): Promise<{ name: string; version: string; images: ScoreImage[]; options: ScoreOptions }> {
  const fields: Record<string, string> = {};
  const images: ScoreImage[] = [];
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      if (images.length >= MAX_SCORE_IMAGES) throw new AppError('INVALID_INPUT', `at most ${MAX_SCORE_IMAGES} images per call`);
      images.push({ bytes: await part.toBuffer(), filename: part.filename });
    } else fields[part.fieldname] = String(part.value);
  }
  const name = fields.name?.trim();
  const version = fields.version?.trim();
  if (!name || !version || !/^\d{1,9}$/.test(version)) throw new AppError('INVALID_INPUT', "fields 'name' and 'version' (a registered version number) are required");
  return { name, version, images, options: { cam: fields.cam === 'true', reference: fields.reference === 'true' } };
}

/**
 * POST /models/score: labelled-case scoring for the registry's site calibration, through the
 * serving path, in a session that never serves; nothing is recorded as a prediction.
 */
export const scoreRoutes: FastifyPluginAsync<{ score: (name: string, version: string, images: ScoreImage[], caller: ReturnType<typeof callerOf>, options: ScoreOptions) => Promise<ScoreReport> }> = async (
  instance,
  { score },
) => {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  app.post(
    '/models/score',
    {
      // Not internal: the model registry calls it with a service token while it calibrates a version,
      // and ML engineers with their key (xray evaluate).
      config: { role: 'ml-engineer' },
      schema: {
        tags: ['models'],
        summary:
          "Score images with a registered version through the serving path (decode, the version's preprocessing, ONNX Runtime), in a session of its own; nothing is recorded as a prediction. The registry's site calibration and `xray evaluate` call this.",
        consumes: ['multipart/form-data', 'application/json'],
        body: z.any().describe('Multipart: fields name, version and the image files in order; or JSON {name, version, hashes} of images the data pipeline stores'),
        response: { 200: scoreReportSchema, ...errorResponses },
      },
    },
    async (req) => {
      if (req.isMultipart()) {
        const m = await readMultipart(req);
        return score(m.name, m.version, m.images, callerOf(req), m.options);
      }
      const parsed = jsonBody.safeParse(req.body);
      if (!parsed.success) throw new AppError('INVALID_INPUT', `invalid body: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
      return score(parsed.data.name, parsed.data.version, parsed.data.hashes.map((sha256) => ({ sha256 })), callerOf(req), { cam: parsed.data.cam === true, reference: parsed.data.reference === true });
    },
  );
};
