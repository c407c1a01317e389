import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { errorResponses } from '../../core/http/index.js';
import type { DataContext } from '../service/context.js';
import { preprocessUpload } from '../service/preprocessed.js';
import { preprocessQuerySchema } from './schemas.js';

export function preprocessRoutes(app: FastifyInstance, ctx: DataContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post(
    '/preprocess',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['preprocessing'],
        summary: 'Preprocess one image to the model input PNG (nothing is stored)',
        description:
          'The same function training exports and serving use: decode (PNG, JPEG, DICOM with rescale, window and MONOCHROME1 inversion) → greyscale → ' +
          'resize to `size` keeping aspect ratio (`letterbox` pads, `crop` centre-crops, `squash` stretches) → 8-bit PNG. Send the image as a raw body or as ' +
          'one multipart file; spec values in the query or as multipart fields. The `x-preprocessing-hash` header identifies the spec.',
        querystring: preprocessQuerySchema,
        response: { 200: z.any().describe('The preprocessed image (image/png)'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const spec: Record<string, unknown> = { ...req.query };
      let bytes: Buffer | null = null;
      if (req.isMultipart()) {
        for await (const part of req.parts()) {
          if (part.type === 'file') {
            if (bytes) throw new AppError('INVALID_INPUT', 'send one file to /preprocess');
            bytes = await part.toBuffer();
          } else if (['size', 'mode', 'pad'].includes(part.fieldname)) {
            const raw = String(part.value);
            spec[part.fieldname] = part.fieldname === 'mode' ? raw : Number(raw);
          }
        }
      } else if (Buffer.isBuffer(req.body)) {
        bytes = req.body;
      }
      if (!bytes) throw new AppError('INVALID_INPUT', 'no image: send a multipart file or a raw image body');
      const out = await preprocessUpload(ctx, bytes, spec);
      void reply
        .type('image/png')
        .header('x-preprocessing-hash', out.specHash)
        .header('x-source-format', out.source.format)
        .header('x-source-size', `${out.source.width}x${out.source.height}`);
      return reply.send(out.png);
    },
  );
}
