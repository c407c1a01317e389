import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { errorResponses } from '../../core/http/index.js';
import type { DataContext } from '../service/context.js';
import { getImport, startImport } from '../service/import.js';
import { ingestFile, type IngestResult } from '../service/ingest.js';
import { isLabel, isSplit, type Label, type Split } from '../store/types.js';
import { importRequestSchema, importStatusSchema, ingestQuerySchema, ingestResponseSchema } from './schemas.js';

const TAGS = ['ingest'];

interface UploadFields {
  label?: Label;
  patientId?: string;
  split?: Split;
}

function summarise(results: IngestResult[]) {
  return {
    ingested: results.filter((r) => r.status === 'ingested').length,
    duplicates: results.filter((r) => r.status === 'duplicate').length,
    rejected: results.filter((r) => r.status === 'rejected').length,
    results,
  };
}

function applyField(fields: UploadFields, name: string, value: unknown): void {
  const v = typeof value === 'string' ? value.trim() : '';
  if (name === 'label') {
    if (!isLabel(v)) throw new AppError('INVALID_INPUT', `label must be NORMAL, PNEUMONIA or unlabelled, got '${v.slice(0, 40)}'`);
    fields.label = v;
  } else if (name === 'patient_id') {
    fields.patientId = v || undefined;
  } else if (name === 'split') {
    if (v && !isSplit(v)) throw new AppError('INVALID_INPUT', `split must be train, val or test, got '${v.slice(0, 40)}'`);
    fields.split = v ? (v as Split) : undefined;
  }
}

/** Reads a multipart upload part by part: fields apply to the files that follow them. */
async function ingestMultipart(ctx: DataContext, req: FastifyRequest): Promise<IngestResult[]> {
  const fields: UploadFields = {};
  const results: IngestResult[] = [];
  for await (const part of req.parts()) {
    if (part.type === 'field') {
      applyField(fields, part.fieldname, part.value);
      continue;
    }
    const bytes = await part.toBuffer();
    const fileName = part.filename || part.fieldname || 'upload';
    if (!fields.label) {
      results.push({ file: fileName, status: 'rejected', error: { code: 'INVALID_INPUT', message: "the 'label' field (NORMAL, PNEUMONIA or unlabelled) must come before the files" } });
      continue;
    }
    results.push(
      await ingestFile(ctx, {
        bytes,
        fileName,
        label: fields.label,
        patientId: fields.patientId ?? null,
        split: fields.split ?? null,
        actor: req.principal.name,
        audit: { requestId: req.id },
      }),
    );
  }
  return results;
}

export function ingestRoutes(app: FastifyInstance, ctx: DataContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post(
    '/ingest',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Ingest one or many images (PNG, JPEG, DICOM)',
        description:
          "multipart/form-data: fields `label` (NORMAL | PNEUMONIA | unlabelled, required, before the files), optional `patient_id` and `split` " +
          '(train | val | test), then one or more files. Or a raw body (image/png, image/jpeg, application/dicom, application/octet-stream) with the same ' +
          'values in the query. Formats are recognised from the bytes, not the file name. DICOM is anonymised before anything is stored. ' +
          'Each file gets its own result: ingested, duplicate (identical bytes already stored) or rejected with a code and message; nothing is stored for a rejected file.',
        querystring: ingestQuerySchema,
        response: { 200: ingestResponseSchema, ...errorResponses },
      },
    },
    async (req) => {
      if (req.isMultipart()) {
        const results = await ingestMultipart(ctx, req);
        if (results.length === 0) throw new AppError('INVALID_INPUT', 'no file in the upload');
        return summarise(results);
      }
      const body = req.body;
      if (!Buffer.isBuffer(body)) {
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'send multipart/form-data, or the image bytes as image/png, image/jpeg, application/dicom or application/octet-stream');
      }
      const q = req.query;
      const result = await ingestFile(ctx, {
        bytes: body,
        fileName: q.filename ?? 'upload',
        label: q.label ?? 'unlabelled',
        patientId: q.patient_id ?? null,
        split: q.split ?? null,
        actor: req.principal.name,
        audit: { requestId: req.id },
      });
      return summarise([result]);
    },
  );

  r.post(
    '/import',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Import a server-side folder as a background job',
        description:
          'Layout `<path>/<split?>/{NORMAL,PNEUMONIA}/*.{jpeg,jpg,png,dcm}`. The folder must be inside the import root (XRAY_IMPORT_ROOT); ' +
          '`..`, absolute paths elsewhere and symlinks leading out are refused. Returns a job id; poll GET /import/{job_id}.',
        body: importRequestSchema,
        response: { 202: z.object({ job_id: z.string() }), ...errorResponses },
      },
    },
    async (req, reply) => {
      const jobId = await startImport(
        ctx,
        { path: req.body.path, label: req.body.label, splitFromFolders: req.body.split_from_folders },
        req.principal.name,
        req.id,
      );
      void reply.status(202);
      return { job_id: jobId };
    },
  );

  r.get(
    '/import/:job_id',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'State and progress of a folder import',
        params: z.object({ job_id: z.string().min(1).max(128) }),
        response: { 200: importStatusSchema, ...errorResponses },
      },
    },
    async (req) => getImport(ctx, req.params.job_id),
  );
}
