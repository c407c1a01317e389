import { storedBytesHeaders } from '../../core/http/safe-content.js';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses, pageQuery } from '../../core/http/index.js';
import type { DataContext } from '../service/context.js';
import { getImageBytes } from '../service/preprocessed.js';
import type { ImageRecord } from '../store/types.js';
import { imageSchema, labelSchema, sha256Schema } from './schemas.js';

const TAGS = ['images'];

function toView(i: ImageRecord): z.infer<typeof imageSchema> {
  return {
    hash: i.hash,
    source_name: i.sourceName,
    label: i.label,
    patient_id: i.patientId,
    patient_source: i.patientSource,
    split: i.split,
    format: i.format,
    modality: i.modality,
    width: i.width,
    height: i.height,
    bit_depth: i.bitDepth,
    photometric: i.photometric,
    size_bytes: i.sizeBytes,
    stats: (i.stats as Record<string, number> | null) ?? null,
    phash: i.phash,
    quality_flags: i.qualityFlags,
    ingested_at: i.ingestedAt,
    ingested_by: i.ingestedBy,
  };
}

export function imageRoutes(app: FastifyInstance, ctx: DataContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get(
    '/images',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'List stored images (hash order), with counts per label',
        querystring: pageQuery.extend({ label: labelSchema.optional() }),
        response: {
          200: z.object({ items: z.array(imageSchema), next_page_token: z.string().optional(), counts: z.record(z.string(), z.number()) }),
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const [page, counts] = await Promise.all([
        ctx.images.list({ pageSize: req.query.page_size, pageToken: req.query.page_token, label: req.query.label }),
        ctx.images.countByLabel(),
      ]);
      return { items: page.items.map(toView), ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}), counts };
    },
  );

  r.get(
    '/images/:hash',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: 'Metadata of one image', params: z.object({ hash: sha256Schema }), response: { 200: imageSchema, ...errorResponses } },
    },
    async (req) => toView(await ctx.images.require(req.params.hash)),
  );

  r.get(
    '/images/:hash/content',
    {
      config: { role: 'clinician' },
      schema: {
        tags: TAGS,
        summary: 'The stored bytes of an image (DICOM: the anonymised file)',
        params: z.object({ hash: sha256Schema }),
        response: { 200: z.any().describe('The stored file (image/png, image/jpeg or application/dicom)'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const image = await ctx.images.require(req.params.hash);
      const bytes = await getImageBytes(ctx, image.hash);
      void storedBytesHeaders(reply, image.format === 'dicom' ? 'application/dicom' : `image/${image.format}`, `${image.hash}.${image.format === 'dicom' ? 'dcm' : image.format}`);
      return reply.send(bytes);
    },
  );
}
