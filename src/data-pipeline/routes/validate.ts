import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errorResponses } from '../../core/http/index.js';
import type { DataContext } from '../service/context.js';
import { validateDataset } from '../service/validate.js';
import { validateQuerySchema, validationReportSchema } from './schemas.js';

export function validateRoutes(app: FastifyInstance, ctx: DataContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/validate',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: ['validation'],
        summary: 'Validate all images or one dataset version; the report is stored and returned',
        description:
          'Quality flags, identical bytes with conflicting labels, near-duplicates by perceptual hash (distance ≤ threshold bits), and leakage: a patient ' +
          'or a near-duplicate pair spread over splits (for `all`: the splits recorded at ingest). `ok` is false on conflicts, cross-class near-duplicates or leakage.',
        querystring: validateQuerySchema,
        response: { 200: validationReportSchema, ...errorResponses },
      },
    },
    async (req) => validateDataset(ctx, { dataset: req.query.dataset, threshold: req.query.threshold }, req.principal.name, req.id),
  );
}
