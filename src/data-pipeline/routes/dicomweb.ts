import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { forwardedCredential } from '../../core/auth/index.js';
import { AppError } from '../../core/errors.js';
import { errorEnvelope } from '../../core/http/schemas.js';
import type { AutoPredictor } from '../service/auto-predict.js';
import { SERVICE_NAME, type DataContext } from '../service/context.js';
import { parseMultipartRelated, qidoPage, retrieveInstances, searchInstances, searchSeries, searchStudies, stowInstances, contentTypeParams } from '../service/dicomweb.js';
import { autoPredictJobSchema, autoPredictStatusSchema, dicomJsonSchema, qidoQuerySchema } from './schemas.js';

const TAGS = ['dicomweb'];
const DICOM_JSON = 'application/dicom+json';
const uidParam = z.string().regex(/^[0-9.]{1,64}$/, 'a DICOM UID (digits and dots, at most 64)');
const errors = { 400: errorEnvelope, 401: errorEnvelope, 403: errorEnvelope, 413: errorEnvelope, 415: errorEnvelope, 500: errorEnvelope, 503: errorEnvelope };

/**
 * DICOMweb STOW-RS and QIDO-RS (PS3.18) on the data pipeline. STOW-RS takes
 * `multipart/related; type="application/dicom"`; each part goes through POST /ingest's path.
 */
export function dicomwebRoutes(app: FastifyInstance, ctx: DataContext, autoPredict: AutoPredictor | null): void {
  const bodyLimit = ctx.platform.config.maxUploadBytes * 8;
  // Buffered: the parts are split on the boundary here, and each part's bytes are then parsed in the image worker pool.
  app.addContentTypeParser('multipart/related', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post(
    '/dicomweb/studies',
    {
      bodyLimit,
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'STOW-RS: store DICOM instances (multipart/related; type="application/dicom")',
        description:
          'Each part is one DICOM Part 10 instance and is ingested exactly as POST /ingest would (header rules, de-identification, decode and quality gates in the worker pool; label unlabelled). ' +
          'The answer is PS3.18 DICOM JSON: ReferencedSOPSequence (0008,1199) for stored instances, FailedSOPSequence (0008,1198) with FailureReason (0008,1197) for refused ones; ' +
          `200 all stored, 202 some refused, 409 none stored. At most ${Math.round(bodyLimit / 1048576)} MiB per request. With auto-predict on, stored instances are predicted and the result sent to the configured destination.`,
        consumes: ['multipart/related'],
        body: z.any().describe('multipart/related; type="application/dicom"; boundary=…'),
        response: { 200: dicomJsonSchema, 202: dicomJsonSchema, 409: dicomJsonSchema, ...errors },
      },
    },
    async (req, reply) => {
      const contentType = req.headers['content-type'] ?? '';
      const { mediaType, params } = contentTypeParams(contentType);
      if (mediaType !== 'multipart/related') {
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'STOW-RS takes multipart/related; type="application/dicom"; boundary=…');
      }
      const type = (params.type ?? 'application/dicom').toLowerCase();
      if (type !== 'application/dicom') {
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', `only type="application/dicom" parts are accepted (got type="${type.slice(0, 60)}"; DICOM JSON/XML with bulk data is not supported)`);
      }
      if (!Buffer.isBuffer(req.body)) throw new AppError('BAD_REQUEST', 'the multipart/related body is missing');
      const parts = parseMultipartRelated(req.body, contentType);
      const outcome = await stowInstances(ctx, parts, { actor: req.principal.name, requestId: req.id, defaultType: type, keepOriginal: true });
      if (autoPredict) {
        for (const a of outcome.arrivals) autoPredict.submit(a, { channel: 'stow-rs', actor: req.principal.name, requestId: req.id, authorization: forwardedCredential(req) });
      }
      void reply.status(outcome.status).type(DICOM_JSON);
      return outcome.body;
    },
  );

  const pick = (q: z.infer<typeof qidoQuerySchema>, keyword: keyof typeof q, tag: keyof typeof q): string | undefined => {
    const v = (q[keyword] ?? q[tag]) as string | undefined;
    return v && v !== '*' ? v : undefined;
  };

  r.get(
    '/dicomweb/studies',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'QIDO-RS: studies the platform holds (de-identified UIDs)',
        description: 'Study Instance UID (as stored: de-identified), Modalities in Study, Number of Study Related Series / Instances. Matching on StudyInstanceUID; limit/offset paging.',
        querystring: qidoQuerySchema,
        produces: [DICOM_JSON],
        response: { 200: z.array(dicomJsonSchema), ...errors },
      },
    },
    async (req, reply) => {
      void reply.type(DICOM_JSON);
      return searchStudies(ctx, { studyUid: pick(req.query, 'StudyInstanceUID', '0020000D') }, qidoPage(req.query));
    },
  );

  r.get(
    '/dicomweb/studies/:study/series',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'QIDO-RS: series of a study',
        querystring: qidoQuerySchema,
        params: z.object({ study: uidParam }),
        produces: [DICOM_JSON],
        response: { 200: z.array(dicomJsonSchema), ...errors },
      },
    },
    async (req, reply) => {
      void reply.type(DICOM_JSON);
      return searchSeries(ctx, req.params.study, { seriesUid: pick(req.query, 'SeriesInstanceUID', '0020000E'), modality: pick(req.query, 'Modality', '00080060') }, qidoPage(req.query));
    },
  );

  r.get(
    '/dicomweb/studies/:study/series/:series/instances',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'QIDO-RS: instances of a series',
        querystring: qidoQuerySchema,
        params: z.object({ study: uidParam, series: uidParam }),
        produces: [DICOM_JSON],
        response: { 200: z.array(dicomJsonSchema), ...errors },
      },
    },
    async (req, reply) => {
      void reply.type(DICOM_JSON);
      return searchInstances(ctx, req.params.study, req.params.series, { sopInstanceUid: pick(req.query, 'SOPInstanceUID', '00080018') }, qidoPage(req.query));
    },
  );

  // WADO-RS retrieve: the stored files are the de-identified ones, so is every byte served here.
  const retrieve = async (req: FastifyRequest, reply: FastifyReply, filter: { studyUid: string; seriesUid?: string; sopInstanceUid?: string }): Promise<FastifyReply> => {
    const out = await retrieveInstances(ctx, filter);
    ctx.platform.audit.record({
      actor: req.principal.name,
      action: 'dicom.retrieve',
      resource: `study:${filter.studyUid}`,
      outcome: 'success',
      requestId: req.id,
      service: SERVICE_NAME,
      details: { ...(filter.seriesUid ? { series: filter.seriesUid } : {}), ...(filter.sopInstanceUid ? { instance: filter.sopInstanceUid } : {}), instances: out.instances, bytes: out.body.length },
    });
    return reply.type(out.contentType).header('x-content-type-options', 'nosniff').send(out.body);
  };
  const wado = {
    tags: TAGS,
    produces: ['multipart/related'],
    response: { 200: z.any().describe('multipart/related; type="application/dicom": one part per stored, de-identified instance'), 404: errorEnvelope, ...errors },
  };
  const wadoRole = { role: 'clinician' as const };

  r.get(
    '/dicomweb/studies/:study',
    {
      config: wadoRole,
      schema: { ...wado, summary: 'WADO-RS: every stored instance of a study (de-identified files)', params: z.object({ study: uidParam }) },
    },
    (req, reply) => retrieve(req, reply, { studyUid: req.params.study }),
  );

  r.get(
    '/dicomweb/studies/:study/series/:series',
    {
      config: wadoRole,
      schema: { ...wado, summary: 'WADO-RS: every stored instance of a series', params: z.object({ study: uidParam, series: uidParam }) },
    },
    (req, reply) => retrieve(req, reply, { studyUid: req.params.study, seriesUid: req.params.series }),
  );

  r.get(
    '/dicomweb/studies/:study/series/:series/instances/:instance',
    {
      config: wadoRole,
      schema: { ...wado, summary: 'WADO-RS: one stored instance', params: z.object({ study: uidParam, series: uidParam, instance: uidParam }) },
    },
    (req, reply) => retrieve(req, reply, { studyUid: req.params.study, seriesUid: req.params.series, sopInstanceUid: req.params.instance }),
  );

  const autoPredictOff = (): AppError => new AppError('NOT_FOUND', 'auto-predict is off (XRAY_DICOM_AUTOPREDICT_MODEL and XRAY_DICOM_RESULT_DESTINATION)');

  r.get(
    '/dicom/auto-predict',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'Auto-predict on arrival: settings and jobs by state',
        description: 'Jobs of this replica\'s queue (waiting includes those waiting for a retry). 404 when auto-predict is off.',
        response: { 200: autoPredictStatusSchema, 404: errorEnvelope, ...errors },
      },
    },
    async () => {
      if (!autoPredict) throw autoPredictOff();
      return autoPredict.status();
    },
  );

  r.get(
    '/dicom/auto-predict/jobs/:id',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'One auto-predict job: state, tries, next retry, last error, result',
        description: 'Job ids are in the dicom.autopredict audit records. 404 for an unknown id or when auto-predict is off.',
        params: z.object({ id: z.string().regex(/^autopredict-[0-9a-f-]{1,80}$/, 'an auto-predict job id') }),
        response: { 200: autoPredictJobSchema, 404: errorEnvelope, ...errors },
      },
    },
    async (req) => {
      if (!autoPredict) throw autoPredictOff();
      const job = await autoPredict.job(req.params.id);
      if (!job) throw new AppError('NOT_FOUND', `no auto-predict job ${req.params.id}`);
      return {
        id: job.id,
        image: job.data.hash,
        channel: job.data.channel,
        state: job.state,
        attempts: job.attempts,
        retry_at: job.retryAt === null ? null : new Date(job.retryAt).toISOString(),
        error: job.error,
        result: job.result,
        created_at: new Date(job.createdAt).toISOString(),
        updated_at: new Date(job.updatedAt).toISOString(),
      };
    },
  );
}
