import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errorResponses } from '../../core/http/index.js';
import type { MonitoringContext } from '../service/context.js';
import { feedbackBody, feedbackResponse, performanceQuery, performanceSchema, toPerformanceView } from './schemas.js';

const TAGS = ['performance'];

export function feedbackRoutes(app: FastifyInstance, ctx: MonitoringContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post(
    '/feedback',
    {
      config: { role: 'clinician' },
      schema: {
        tags: TAGS,
        summary: 'Record the confirmed diagnosis of a prediction',
        description: 'Ground truth that arrives later; feeds the rolling AUC / sensitivity / specificity and performance drift. A second label replaces the first.',
        body: feedbackBody,
        response: { 200: feedbackResponse, 201: feedbackResponse, ...errorResponses },
      },
    },
    async (req, reply) => {
      const label = req.body.label === 1 || req.body.label === 'PNEUMONIA' ? 1 : 0;
      const { feedback, replaced } = await ctx.feedback.record(req.body.prediction_id, label, req.principal.name, req.id);
      void reply.status(replaced ? 200 : 201);
      return { prediction_id: feedback.predictionId, model: feedback.model, version: feedback.version, label: feedback.label, probability: feedback.probability, replaced };
    },
  );

  r.get(
    '/performance',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'Rolling performance of a model version over its most recent labelled predictions',
        querystring: performanceQuery,
        response: { 200: performanceSchema, ...errorResponses },
      },
    },
    async (req) => {
      const { model, version, window } = req.query;
      return toPerformanceView(model, version, await ctx.feedback.performance(model, version, window));
    },
  );
}
