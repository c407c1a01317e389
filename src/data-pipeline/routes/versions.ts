import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses, pageQuery } from '../../core/http/index.js';
import type { DataContext } from '../service/context.js';
import { exportDatasetVersion, resolveExportDir, toExportManifest } from '../service/export.js';
import { preprocessedPng } from '../service/preprocessed.js';
import { createVersion, diffVersions, getManifest, getVersion, listVersions, toVersionView, versionHasImage } from '../service/versions.js';
import { AppError } from '../../core/errors.js';
import {
  createVersionResponseSchema,
  createVersionSchema,
  exportManifestSchema,
  exportRequestSchema,
  exportResultSchema,
  sha256Schema,
  versionDetailSchema,
  versionDiffSchema,
  versionSchema,
} from './schemas.js';

const TAGS = ['dataset versions'];
const idParams = z.object({ id: sha256Schema });

export function versionRoutes(app: FastifyInstance, ctx: DataContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post(
    '/version/create',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Create an immutable dataset version (patient-level, label-stratified, seeded split)',
        description:
          'The version id is the sha256 of the canonical manifest JSON (items sorted by hash with label, patient and split; preprocessing spec and hash; ' +
          'augmentation spec; seed and split parameters). The same images and parameters give the same id on any machine; creating it again returns the ' +
          'existing version with `created: false` (200 instead of 201).',
        body: createVersionSchema,
        response: { 200: createVersionResponseSchema, 201: createVersionResponseSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const result = await createVersion(
        ctx,
        {
          name: b.name,
          valFraction: b.val_fraction,
          testFraction: b.test_fraction,
          seed: b.seed,
          preprocessing: b.preprocessing,
          augmentation: b.augmentation,
          labels: b.labels,
          excludeQualityFlags: b.exclude_quality_flags,
          useRecordedSplits: b.use_recorded_splits,
          testBy: b.test_by,
          testNamesContaining: b.test_names_containing,
        },
        req.principal.name,
        req.id,
      );
      void reply.status(result.created ? 201 : 200);
      return result;
    },
  );

  r.get(
    '/versions',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'List dataset versions, newest first',
        querystring: pageQuery,
        response: { 200: z.object({ items: z.array(versionSchema), next_page_token: z.string().optional() }), ...errorResponses },
      },
    },
    async (req) => {
      const page = await listVersions(ctx, { pageSize: req.query.page_size, pageToken: req.query.page_token });
      return { items: page.items.map(toVersionView), ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );

  r.get(
    '/versions/:id',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'A dataset version with its manifest',
        params: idParams,
        querystring: z.object({ items: z.enum(['true', 'false']).default('true').describe('Include the manifest (with every item)') }),
        response: { 200: versionDetailSchema, ...errorResponses },
      },
    },
    async (req) => {
      const version = toVersionView(await getVersion(ctx, req.params.id));
      if (req.query.items === 'false') return version;
      return { ...version, manifest: await getManifest(ctx, req.params.id) };
    },
  );

  r.get(
    '/versions/:id/manifest',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: "The trainer's manifest.json of a version (as written by an export)",
        params: idParams,
        response: { 200: exportManifestSchema, ...errorResponses },
      },
    },
    async (req) => toExportManifest(req.params.id, await getManifest(ctx, req.params.id)),
  );

  r.get(
    '/versions/:id/images/:hash',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: "A version item's preprocessed PNG (made once, then cached)",
        params: idParams.extend({ hash: sha256Schema }),
        response: { 200: z.any().describe('The preprocessed image (image/png)'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const manifest = await getManifest(ctx, req.params.id);
      if (!(await versionHasImage(ctx, req.params.id, req.params.hash))) {
        throw new AppError('NOT_FOUND', `image '${req.params.hash}' is not in dataset version '${req.params.id}'`);
      }
      const { png } = await preprocessedPng(ctx, req.params.hash, manifest.preprocessing);
      void reply.type('image/png').header('cache-control', 'public, max-age=31536000, immutable');
      return reply.send(png);
    },
  );

  r.get(
    '/versions/:a/diff/:b',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'What changed from version a to version b',
        params: z.object({ a: sha256Schema, b: sha256Schema }),
        response: { 200: versionDiffSchema, ...errorResponses },
      },
    },
    async (req) => diffVersions(ctx, req.params.a, req.params.b),
  );

  r.post(
    '/versions/:id/export',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Export a version for training to XRAY_HOME/exports/<dir>',
        description: 'Writes `manifest.json` and `images/<hash>.png` (preprocessed, cached in the object store under preprocessed/<spechash>/).',
        params: idParams,
        body: exportRequestSchema,
        response: { 200: exportResultSchema, ...errorResponses },
      },
    },
    async (req) => {
      const dir = resolveExportDir(ctx.platform.config.home, req.body.dir);
      return exportDatasetVersion(ctx.platform, req.params.id, dir, { actor: req.principal.name, requestId: req.id });
    },
  );
}
