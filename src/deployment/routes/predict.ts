import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { errorResponses } from '../../core/http/schemas.js';
import type { BatchItemResult, DataPlane } from '../dataplane.js';
import { callerOf, clientKeyOf, readManyImages, readSingleImage, toPredictionBody, toRecordBody } from './http.js';
import { batchResponseSchema, idParams, predictQuery, predictionRecordSchema, predictionSchema, storedBatchBody } from './schemas.js';

const IMAGE_TYPES = ['multipart/form-data', 'image/png', 'image/jpeg', 'application/dicom', 'application/octet-stream'];

/** Our JSON/multipart prediction API over the data plane. */
export const predictRoutes: FastifyPluginAsync<{ dataplane: DataPlane }> = async (instance, { dataplane }) => {
  const app = instance.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/predict',
    {
      config: { role: 'clinician' },
      schema: {
        tags: ['predict'],
        summary: 'Predict pneumonia for one chest X-ray (PNG, JPEG or DICOM)',
        description:
          'Send the image as a multipart file or as the raw body. A/B routing is sticky per `x-client-key`. The heatmap is a class activation map, or occlusion sensitivity for models without a features output.',
        consumes: IMAGE_TYPES,
        body: z.any().describe('The image: a multipart file (any field name) or the raw bytes'),
        querystring: predictQuery,
        response: { 200: predictionSchema, ...errorResponses },
      },
    },
    async (req) => {
      const image = await readSingleImage(req);
      const q = req.query;
      const prediction = await dataplane.predict(
        { image, model: q.model, version: q.version, clientKey: clientKeyOf(req, q.client_key), heatmap: q.heatmap },
        callerOf(req),
      );
      return toPredictionBody(req, prediction);
    },
  );

  app.post(
    '/predict/batch',
    {
      config: { role: 'clinician' },
      schema: {
        tags: ['predict'],
        summary: 'Predict many images: multipart files, or JSON {hashes} of images stored by the data pipeline',
        description: 'Each image succeeds or fails on its own (see `error` per result). At most 256 images.',
        consumes: ['multipart/form-data', 'application/json'],
        body: z.any().describe('Multipart files, or JSON {"hashes": [sha256, …]} of images stored by the data pipeline'),
        querystring: predictQuery,
        response: { 200: batchResponseSchema, ...errorResponses },
      },
    },
    async (req) => {
      const q = req.query;
      const opts = { model: q.model, version: q.version, clientKey: clientKeyOf(req, q.client_key), heatmap: q.heatmap };
      let labels: { filename?: string; hash?: string }[];
      let results: BatchItemResult[];
      if (req.isMultipart()) {
        const files = await readManyImages(req);
        labels = files.map((f) => ({ filename: f.filename }));
        results = await dataplane.predictBatch(
          files.map((f) => f.bytes),
          opts,
          callerOf(req),
        );
      } else {
        const parsed = storedBatchBody.safeParse(req.body);
        if (!parsed.success) {
          throw new AppError('INVALID_INPUT', `send multipart files or JSON {"hashes": [sha256, …]}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
        }
        labels = parsed.data.hashes.map((hash) => ({ hash }));
        results = await dataplane.predictStored(parsed.data.hashes, opts, callerOf(req));
      }
      const items = results.map((r, index) => (r.ok ? { index, ...labels[index], prediction: toPredictionBody(req, r.prediction) } : { index, ...labels[index], error: r.error }));
      const succeeded = results.filter((r) => r.ok).length;
      return { results: items, succeeded, failed: results.length - succeeded };
    },
  );

  app.get(
    '/predictions/:id',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['predict'],
        summary: 'A logged prediction (input statistics and embedding included)',
        params: idParams,
        response: { 200: predictionRecordSchema, ...errorResponses },
      },
    },
    async (req) => toRecordBody(req, await dataplane.getPrediction(req.params.id)),
  );

  app.get(
    '/predictions/:id/heatmap.png',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['predict'],
        summary: 'The heatmap of a prediction as a PNG overlay on the preprocessed image',
        params: idParams,
        produces: ['image/png'],
        response: { 200: z.unknown().describe('image/png'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const png = await dataplane.explain(req.params.id);
      return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(png);
    },
  );
};
