import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { errorResponses } from '../../core/http/schemas.js';
import type { DataPlane, InferOutput } from '../dataplane.js';
import { callerOf } from './http.js';
import { v2InferBody, v2InferResponse, v2MetadataResponse, v2ModelParams, v2VersionParams } from './schemas.js';

const SERVER = { name: 'xray-mlops-deployment', version: '0.1.0', extensions: [] as string[] };

/** Row-major flattening of OIP `data` (flat or nested); every leaf must be a number. */
export function flattenTensorData(data: unknown[], name: string): number[] {
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'number') out.push(v);
    else if (Array.isArray(v)) for (const x of v) walk(x);
    else throw new AppError('INVALID_INPUT', `input '${name}' data must hold only numbers`);
  };
  for (const v of data) walk(v);
  return out;
}

function toWire(out: InferOutput): z.infer<typeof v2InferResponse> {
  return {
    model_name: out.modelName,
    model_version: out.modelVersion,
    id: out.id,
    outputs: out.outputs.map((o) => ({ name: o.name, shape: o.shape, datatype: o.datatype, data: Array.from(o.data) })),
  };
}

/** Open Inference Protocol v2 (KServe / Triton REST) over the same data plane. */
export const v2Routes: FastifyPluginAsync<{ dataplane: DataPlane }> = async (instance, { dataplane }) => {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  const tags = ['open-inference-protocol-v2'];

  app.get('/v2', { config: { role: 'public' }, schema: { tags, summary: 'Server metadata', response: { 200: z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) }) } } }, async () => SERVER);

  app.get('/v2/health/live', { config: { role: 'public', rateLimit: false }, schema: { tags, summary: 'Server liveness', response: { 200: z.object({ live: z.boolean() }) } } }, async () => ({ live: true }));

  const ready = z.object({ ready: z.boolean() });
  app.get(
    '/v2/health/ready',
    { config: { role: 'public', rateLimit: false }, schema: { tags, summary: 'Server readiness: a model is loaded and ready', response: { 200: ready, 503: ready } } },
    async (_req, reply) => {
      const ok = dataplane.serverReady();
      void reply.status(ok ? 200 : 503);
      return { ready: ok };
    },
  );

  const modelReady = z.object({ name: z.string(), version: z.string().optional(), ready: z.boolean() });
  app.get(
    '/v2/models/:model/ready',
    { config: { role: 'viewer' }, schema: { tags, summary: 'Model readiness', params: v2ModelParams, response: { 200: modelReady, 503: modelReady } } },
    async (req, reply) => {
      const ok = dataplane.modelReady(req.params.model);
      void reply.status(ok ? 200 : 503);
      return { name: req.params.model, ready: ok };
    },
  );
  app.get(
    '/v2/models/:model/versions/:version/ready',
    { config: { role: 'viewer' }, schema: { tags, summary: 'Model version readiness', params: v2VersionParams, response: { 200: modelReady, 503: modelReady } } },
    async (req, reply) => {
      const ok = dataplane.modelReady(req.params.model, req.params.version);
      void reply.status(ok ? 200 : 503);
      return { name: req.params.model, version: req.params.version, ready: ok };
    },
  );

  app.get(
    '/v2/models/:model',
    { config: { role: 'viewer' }, schema: { tags, summary: 'Model metadata (inputs, outputs)', params: v2ModelParams, response: { 200: v2MetadataResponse, ...errorResponses } } },
    async (req) => dataplane.metadata(req.params.model),
  );
  app.get(
    '/v2/models/:model/versions/:version',
    { config: { role: 'viewer' }, schema: { tags, summary: 'Model version metadata', params: v2VersionParams, response: { 200: v2MetadataResponse, ...errorResponses } } },
    async (req) => dataplane.metadata(req.params.model, req.params.version),
  );

  const inferSchema = {
    tags,
    description:
      'Input `input`, datatype FP32, shape [N, 1, S, S] with the preprocessed image as pixel/255 (row-major, flat or nested). Outputs: `probability` [N, 1] (default) and, when asked for, `features` [N, C, h, w].',
    body: v2InferBody,
    response: { 200: v2InferResponse, ...errorResponses },
  };
  app.post(
    '/v2/models/:model/infer',
    { config: { role: 'clinician' }, schema: { ...inferSchema, summary: 'Inference (default version)', params: v2ModelParams } },
    async (req) => {
      const b = req.body;
      const out = await dataplane.infer(
        {
          model: req.params.model,
          id: b.id,
          inputs: b.inputs.map((t) => ({ name: t.name, shape: t.shape, datatype: t.datatype, data: flattenTensorData(t.data, t.name) })),
          outputs: b.outputs?.map((o) => o.name),
        },
        callerOf(req),
      );
      return toWire(out);
    },
  );
  app.post(
    '/v2/models/:model/versions/:version/infer',
    { config: { role: 'clinician' }, schema: { ...inferSchema, summary: 'Inference (a given version)', params: v2VersionParams } },
    async (req) => {
      const b = req.body;
      const out = await dataplane.infer(
        {
          model: req.params.model,
          version: req.params.version,
          id: b.id,
          inputs: b.inputs.map((t) => ({ name: t.name, shape: t.shape, datatype: t.datatype, data: flattenTensorData(t.data, t.name) })),
          outputs: b.outputs?.map((o) => o.name),
        },
        callerOf(req),
      );
      return toWire(out);
    },
  );
};
