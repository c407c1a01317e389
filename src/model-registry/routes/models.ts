import { storedBytesHeaders } from '../../core/http/safe-content.js';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { forwardedCredential } from '../../core/auth/index.js';
import { errorResponses, pageQuery } from '../../core/http/index.js';
import type { RegisterInput } from '../service/registry-service.js';
import type { CalibrateInput, SiteLabel } from '../service/site-calibration.js';
import {
  calibrateJsonBody,
  calibrateOptions,
  calibrateResult,
  comparison,
  deleteResult,
  gcBody,
  gcResult,
  lineage,
  lungFieldReport,
  modelCard,
  modelDetail,
  modelSummary,
  modelVersionView,
  registerJsonBody,
  stageBody,
  stageResult,
} from './schemas.js';
import { toStageEventView, toVersionView } from './views.js';

const TAGS = ['models'];
const nameParam = z.object({ name: z.string().min(1).max(128) });
const versionParams = z.object({ name: z.string().min(1).max(128), version: z.string().min(1).max(128) });
const truthy = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1');

function actorOf(req: FastifyRequest) {
  return { name: req.principal.name, role: req.principal.role };
}

function jsonField(field: string, raw: string): Record<string, unknown> {
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new AppError('INVALID_INPUT', `field '${field}' must be a JSON object`);
}

/**
 * Reads a multipart registration: the ONNX file (part `file` or `model`) or a tracked run's
 * (fields run_id + artifact_path), an optional `metadata`
 * part (model.json, as a file or a JSON field), other files kept as extra artifacts, and the
 * fields name, description, dataset_version, code_version, parent_name, parent_version, tags (JSON).
 */
async function readMultipartRegistration(req: FastifyRequest): Promise<Omit<RegisterInput, 'actor' | 'requestId'>> {
  const fields: Record<string, string> = {};
  let onnx: { data: Buffer; filename: string } | null = null;
  let metadata: Record<string, unknown> | null = null;
  const extras: { path: string; data: Buffer; contentType?: string }[] = [];
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      const data = await part.toBuffer();
      if (part.fieldname === 'file' || part.fieldname === 'model') {
        if (onnx) throw new AppError('INVALID_INPUT', 'send one ONNX file (part "file")');
        onnx = { data, filename: part.filename };
      } else if (part.fieldname === 'metadata') {
        metadata = jsonField('metadata', data.toString('utf8'));
      } else {
        extras.push({ path: part.filename || part.fieldname, data, contentType: part.mimetype });
      }
    } else {
      fields[part.fieldname] = String(part.value);
    }
  }
  const runId = fields.run_id?.trim();
  if (!onnx && !runId) throw new AppError('INVALID_INPUT', 'no ONNX file: send it as the multipart part "file" (or the fields run_id + artifact_path)');
  if (onnx && runId) throw new AppError('INVALID_INPUT', 'send either an ONNX file or run_id, not both');
  if (fields.metadata) metadata = jsonField('metadata', fields.metadata);
  const name = fields.name?.trim();
  if (!name) throw new AppError('INVALID_INPUT', "field 'name' is required");
  let parent: RegisterInput['parent'] = null;
  if (fields.parent_name || fields.parent_version) {
    const version = Number(fields.parent_version);
    if (!fields.parent_name || !Number.isInteger(version) || version < 1) throw new AppError('INVALID_INPUT', 'parent_name and a positive integer parent_version go together');
    parent = { name: fields.parent_name, version };
  }
  const tags = fields.tags ? Object.entries(jsonField('tags', fields.tags)).map(([key, value]) => ({ key, value: String(value) })) : undefined;
  return {
    name,
    source: onnx ? { kind: 'upload', data: onnx.data, filename: onnx.filename } : { kind: 'run', runId: runId!, artifactPath: fields.artifact_path?.trim() || 'model.onnx' },
    metadata,
    description: fields.description,
    datasetVersion: fields.dataset_version || undefined,
    codeVersion: fields.code_version || undefined,
    parent,
    tags,
    extraArtifacts: extras,
  };
}

/**
 * Reads a site calibration upload: each image a file part named by its label (NORMAL or
 * PNEUMONIA; the filename is its path in the site's folder, for messages), and the options as
 * fields (method, target_sensitivity, min_cases, ci_method, promote).
 */
async function readCalibrationUpload(req: FastifyRequest): Promise<{ files: { file: string; label: SiteLabel; data: Buffer }[]; fields: Record<string, string> }> {
  const fields: Record<string, string> = {};
  const files: { file: string; label: SiteLabel; data: Buffer }[] = [];
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      const label = part.fieldname.toUpperCase();
      if (label !== 'NORMAL' && label !== 'PNEUMONIA') throw new AppError('INVALID_INPUT', `file part '${part.fieldname}' (${part.filename}): name each image part by its label, NORMAL or PNEUMONIA`);
      files.push({ file: part.filename || `${label}/${files.length}`, label, data: await part.toBuffer() });
    } else fields[part.fieldname] = String(part.value);
  }
  return { files, fields };
}

/** The registry's own API (platform error envelope): register, browse, promote, compare, lineage, cards, delete, gc. */
export const modelRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const service = () => app.modelRegistry;

  app.post(
    '/models/register',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: "Register a model version from a run's ONNX artifact (JSON) or an uploaded ONNX file (multipart: file + name [+ metadata])",
        description:
          'The ONNX file must load in ONNX Runtime with one input [N,1,H,W] and an output named `probability` (`features` optional). `metadata` is the trainer\'s model.json (metrics, threshold, preprocessing, dataset_version, …). ' +
          'A `metadata.variant` record (an INT8 variant\'s parity gate verdict) is accepted only from a platform service (the training service measured the gate): 403 for an API key alone, even an admin\'s.',
        body: registerJsonBody.nullish(),
        response: { 201: z.object({ model_version: modelVersionView }), ...errorResponses },
      },
    },
    async (req, reply) => {
      let input: Omit<RegisterInput, 'actor' | 'requestId'>;
      if (req.isMultipart()) input = await readMultipartRegistration(req);
      else {
        if (!req.body) throw new AppError('INVALID_INPUT', 'send JSON {name, run_id, artifact_path} or a multipart upload with an ONNX file');
        const b = req.body;
        input = {
          name: b.name,
          source: { kind: 'run', runId: b.run_id, artifactPath: b.artifact_path },
          metadata: b.metadata ?? null,
          description: b.description,
          datasetVersion: b.dataset_version,
          codeVersion: b.code_version,
          parent: b.parent ?? null,
          tags: b.tags ? Object.entries(b.tags).map(([key, value]) => ({ key, value })) : undefined,
        };
      }
      const version = await service().register({ ...input, actor: actorOf(req), requestId: req.id, fromService: req.actsAsService });
      void reply.status(201);
      return { model_version: toVersionView(version) };
    },
  );

  app.get(
    '/models',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'List registered models with their production / staging versions',
        querystring: pageQuery.extend({ q: z.string().max(128).optional() }),
        response: { 200: z.object({ models: z.array(modelSummary), next_page_token: z.string().optional() }), ...errorResponses },
      },
    },
    async (req) => {
      const q = req.query;
      const filter = q.q ? `name ILIKE '%${q.q.replace(/'/g, "''")}%'` : undefined;
      const page = await service().listModels({ pageSize: q.page_size, pageToken: q.page_token, filter });
      return { models: page.items, ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );

  app.get(
    '/models/compare',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'Side-by-side metrics, params, dataset versions, confusion matrices and ROC curves of versions',
        querystring: z.object({
          name: z.string().min(1),
          versions: z
            .string()
            .regex(/^\d+(,\d+)*$/, 'comma-separated version numbers, e.g. 1,2')
            .transform((s) => s.split(',').map(Number)),
        }),
        response: { 200: comparison, ...errorResponses },
      },
    },
    async (req) => service().compare(req.query.name, req.query.versions),
  );

  app.get(
    '/models/:name',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: 'A model: versions (metrics, lineage fields), aliases, stage history', params: nameParam, response: { 200: modelDetail, ...errorResponses } },
    },
    async (req) => {
      const d = await service().getModel(req.params.name);
      return {
        model: {
          name: d.model.name,
          description: d.model.description,
          created: d.model.creation_timestamp,
          updated: d.model.last_updated_timestamp,
          user_id: d.model.user_id,
          tags: d.model.tags,
          aliases: d.model.aliases,
        },
        versions: d.versions.map((v) => toVersionView(v, false)),
        stage_events: d.stage_events.map(toStageEventView),
      };
    },
  );

  app.get(
    '/models/:name/versions/:version',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: "A version by number or alias ('production', 'staging', 'latest')", params: versionParams, response: { 200: z.object({ model_version: modelVersionView }), ...errorResponses } },
    },
    async (req) => ({ model_version: toVersionView(await service().resolve(req.params.name, req.params.version)) }),
  );

  app.get(
    '/models/:name/versions/:version/artifacts',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: "A version's stored files",
        params: versionParams,
        response: { 200: z.object({ artifacts: z.array(z.object({ path: z.string(), sha256: z.string(), size: z.number(), content_type: z.string() })) }), ...errorResponses },
      },
    },
    async (req) => {
      const v = await service().resolve(req.params.name, req.params.version);
      const artifacts = await service().registry.listVersionArtifacts(v.name, v.version);
      return { artifacts: artifacts.map((a) => ({ path: a.path, sha256: a.sha256, size: a.size, content_type: a.content_type })) };
    },
  );

  app.get(
    '/models/:name/versions/:version/artifacts/*',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: 'Download a file of a version (e.g. model.onnx, model.json)', params: versionParams.extend({ '*': z.string().min(1) }) },
    },
    async (req, reply) => {
      const { artifact, stream } = await service().openArtifact(req.params.name, req.params.version, req.params['*']);
      void storedBytesHeaders(reply, artifact.content_type, artifact.path)
        .header('content-length', String(artifact.size))
        .header('x-content-sha256', artifact.sha256);
      return reply.send(stream);
    },
  );

  app.get(
    '/models/:name/versions/:version/lineage',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: 'Lineage: run → dataset version → preprocessing hash → code version → parent model', params: versionParams, response: { 200: lineage, ...errorResponses } },
    },
    async (req) => service().lineage(req.params.name, req.params.version),
  );

  app.get(
    '/models/:name/versions/:version/card',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'Model card (JSON, or Markdown with ?format=markdown)',
        params: versionParams,
        querystring: z.object({ format: z.enum(['json', 'markdown']).default('json') }),
        response: { 200: z.union([modelCard, z.string()]), ...errorResponses },
      },
    },
    async (req, reply) => {
      if (req.query.format === 'markdown') {
        void reply.type('text/markdown; charset=utf-8');
        return service().cardMarkdown(req.params.name, req.params.version);
      }
      return service().card(req.params.name, req.params.version);
    },
  );

  app.post(
    '/models/:name/versions/:version/lung-fields',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: "Measure how much of the version's heatmap mass falls inside the lung fields on its dataset version's validation split; kept on the version and shown in its model card",
        description:
          "The lung fields are a fixed atlas built from the dataset version's training split (the mean preprocessed image, thresholded inside a geometric thorax prior); the heatmaps are the serving path's class-activation maps, scored by the deployment. 422 UNPROCESSABLE when the version records no dataset version or has no class-activation map.",
        params: versionParams,
        response: { 200: lungFieldReport, ...errorResponses },
      },
    },
    async (req) => service().measureLungFields(req.params.name, req.params.version, { actor: actorOf(req), requestId: req.id, authorization: forwardedCredential(req) }),
  );

  app.post(
    '/models/:name/versions/:version/calibrate',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: "Site calibration: fit a threshold and a temperature on a site's labelled cases and register them as a child version (same ONNX bytes)",
        description:
          "The cases are scored by the deployment through its serving path. Send the images as multipart file parts named NORMAL or PNEUMONIA (fields: method=sensitivity|youden, target_sensitivity, min_cases, ci_method=wilson|clopper-pearson, promote), or JSON {dataset_version, split?, …} for a dataset version the data pipeline stores. Fewer than min_cases (default 30) of either class is refused with 422 TOO_FEW_CASES. With promote=true the child goes through the promotion gate, which compares AUCs on the site's cases.",
        params: versionParams,
        consumes: ['multipart/form-data', 'application/json'],
        body: z.any(),
        response: { 201: calibrateResult, ...errorResponses },
      },
    },
    async (req, reply) => {
      let data: CalibrateInput['data'];
      let raw: Record<string, unknown>;
      if (req.isMultipart()) {
        const upload = await readCalibrationUpload(req);
        data = { kind: 'upload', files: upload.files };
        raw = upload.fields;
      } else {
        const parsed = calibrateJsonBody.safeParse(req.body ?? {});
        if (!parsed.success) throw new AppError('INVALID_INPUT', `send the images as multipart parts named NORMAL / PNEUMONIA, or JSON {dataset_version, …}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
        data = { kind: 'dataset', datasetVersion: parsed.data.dataset_version, split: parsed.data.split };
        raw = req.body as Record<string, unknown>;
      }
      const options = calibrateOptions.safeParse(raw);
      if (!options.success) throw new AppError('INVALID_INPUT', `invalid calibration options: ${options.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      const o = options.data;
      const out = await service().calibrate({
        name: req.params.name,
        version: req.params.version,
        data,
        method: o.method,
        targetSensitivity: o.target_sensitivity,
        minCases: o.min_cases,
        ciMethod: o.ci_method,
        promote: o.promote,
        actor: actorOf(req),
        requestId: req.id,
        authorization: forwardedCredential(req),
      });
      void reply.status(201);
      return { model_version: toVersionView(out.version), calibration: out.calibration, failures: out.failures, promotion: out.promotion };
    },
  );

  app.post(
    '/models/:name/stage',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Move a version to None / Staging / Production / Archived (Production passes the AUC gate unless an admin forces it with a reason)',
        params: nameParam,
        body: stageBody,
        response: { 200: stageResult, ...errorResponses },
      },
    },
    async (req) => {
      const result = await service().setStage({
        name: req.params.name,
        version: req.body.version,
        stage: req.body.stage as 'None',
        force: req.body.force,
        reason: req.body.reason,
        actor: actorOf(req),
        requestId: req.id,
        authorization: forwardedCredential(req),
      });
      return { model_version: toVersionView(result.version), gate: result.verdict, changed: result.changed, demoted: result.demoted };
    },
  );

  app.delete(
    '/models/:name/versions/:version',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Delete a version: soft by default; ?hard=true (admin) also removes files no other version or run references',
        params: versionParams,
        querystring: z.object({ hard: truthy, force: truthy, reason: z.string().max(2000).optional() }),
        response: { 200: z.object({ deleted: deleteResult }), ...errorResponses },
      },
    },
    async (req) => {
      const version = Number(req.params.version);
      if (!Number.isInteger(version) || version < 1) throw new AppError('INVALID_INPUT', 'delete takes a version number, not an alias');
      return { deleted: await service().deleteVersion({ name: req.params.name, version, hard: req.query.hard, force: req.query.force, reason: req.query.reason, actor: actorOf(req), requestId: req.id }) };
    },
  );

  app.post(
    '/artifacts/gc',
    {
      config: { role: 'admin' },
      schema: {
        tags: TAGS,
        summary: 'Remove stored artifacts no run or model version references',
        body: gcBody,
        response: { 200: gcResult, ...errorResponses },
      },
    },
    async (req) => service().collectGarbage({ actor: actorOf(req), dryRun: req.body?.dry_run ?? false, minAgeS: req.body?.min_age_s, requestId: req.id }),
  );
};
