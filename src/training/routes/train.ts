import { storedBytesHeaders } from '../../core/http/safe-content.js';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { errorResponses, pageQuery } from '../../core/http/index.js';
import type { TrainingService } from '../service/training-service.js';
import { eventView, jobView } from '../service/views.js';
import { streamEvents, wantsEventStream } from './sse.js';
import { JOB_STATES } from '../store/types.js';
import {
  artifactParams,
  eventsQuery,
  eventsResponse,
  jobIdParams,
  jobList,
  jobView as jobViewSchema,
  registerRequest,
  registerResponse,
  runtimeView,
  trainRequestSchema,
} from './schemas.js';

const caller = (req: FastifyRequest) => ({ actor: req.principal?.name ?? 'anonymous', role: req.principal?.role, requestId: req.id });
const tags = ['training'];

/** /train: training jobs (submit, inspect, follow, cancel, resume, register, artifacts). */
export const trainRoutes: FastifyPluginAsync<{ service: TrainingService }> = async (fastify, { service }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/train',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags,
        summary: 'Queue a training job',
        description: 'Checks the dataset version and the worker runtime, then queues the job. 503 TRAINER_RUNTIME_MISSING names the packages to install.',
        body: trainRequestSchema,
        response: { 202: z.object({ job_id: z.string(), state: z.string() }), ...errorResponses },
      },
    },
    async (req, reply) => {
      const job = await service.submit(req.body, caller(req));
      void reply.status(202);
      return { job_id: job.id, state: job.state };
    },
  );

  app.get(
    '/train',
    {
      config: { role: 'viewer' },
      schema: {
        tags,
        summary: 'List training jobs, newest first',
        querystring: pageQuery.extend({ state: z.enum(JOB_STATES).optional() }),
        response: { 200: jobList, ...errorResponses },
      },
    },
    async (req) => {
      const page = await service.listJobs({ pageSize: req.query.page_size, pageToken: req.query.page_token, states: req.query.state ? [req.query.state] : undefined });
      return { jobs: page.items.map((j) => jobView(j)), ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );

  app.get(
    '/train/runtime',
    {
      config: { role: 'viewer' },
      schema: { tags, summary: 'The worker runtime: interpreter, torch and optuna versions', response: { 200: runtimeView, ...errorResponses } },
    },
    async () => {
      try {
        const r = await service.runtime();
        return { available: true, python: r.python, torch: r.torch, optuna: r.optuna, runner: service.runner.kind, tracking: service.trackerKind, error: null };
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        return { available: false, python: null, torch: null, optuna: null, runner: service.runner.kind, tracking: service.trackerKind, error: err.message };
      }
    },
  );

  app.get(
    '/train/:id',
    {
      config: { role: 'viewer' },
      schema: {
        tags,
        summary: 'A training job: state, progress, current epoch metrics, history, ETA, artifacts',
        params: jobIdParams,
        response: { 200: jobViewSchema, ...errorResponses },
      },
    },
    async (req) => {
      const job = await service.getJob(req.params.id);
      return jobView(job, await service.epochs(job.id));
    },
  );

  app.delete(
    '/train/:id',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags,
        summary: 'Cancel a job (the worker saves a checkpoint first)',
        description: 'A queued job is cancelled at once; a running one when its worker confirms (state stays running briefly).',
        params: jobIdParams,
        response: { 202: jobViewSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const job = await service.cancel(req.params.id, caller(req));
      void reply.status(202);
      return jobView(job);
    },
  );

  app.post(
    '/train/:id/resume',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags,
        summary: 'Resume a cancelled, interrupted or failed job from its last checkpoint (same job id, next attempt)',
        params: jobIdParams,
        response: { 202: jobViewSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const job = await service.resume(req.params.id, caller(req));
      void reply.status(202);
      return jobView(job);
    },
  );

  app.post(
    '/train/:id/register',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags,
        summary: "Register a succeeded job's ONNX model in the model registry",
        params: jobIdParams,
        body: registerRequest,
        response: { 201: registerResponse, ...errorResponses },
      },
    },
    async (req, reply) => {
      const registered = await service.register(req.params.id, req.body.name, caller(req));
      void reply.status(201);
      return { job_id: req.params.id, registered };
    },
  );

  app.get(
    '/train/:id/events',
    {
      config: { role: 'viewer' },
      schema: {
        tags,
        summary: 'Worker and state events of a job (long poll with ?wait=, or SSE with Accept: text/event-stream)',
        description: 'Returns events with seq > after; with wait > 0 holds the request until one arrives. done=true once the job is final and every event was returned.',
        params: jobIdParams,
        querystring: eventsQuery,
        response: { 200: eventsResponse, ...errorResponses },
      },
    },
    async (req, reply) => {
      const job = await service.getJob(req.params.id);
      if (wantsEventStream(req)) {
        await streamEvents(req, reply, service, job.id, req.query.after, async () => (await service.store.getJob(job.id))?.state ?? null);
        return reply;
      }
      const abort = new AbortController();
      reply.raw.once('close', () => abort.abort());
      const { events, done } = await service.waitForEvents(job.id, req.query.after, req.query.wait * 1000, abort.signal);
      const limited = events.slice(0, req.query.limit);
      const state = (await service.store.getJob(job.id))?.state ?? null;
      return { events: limited.map(eventView), next_after: limited.at(-1)?.seq ?? req.query.after, done: done && limited.length === events.length, state };
    },
  );

  app.get(
    '/train/:id/stream',
    {
      config: { role: 'viewer' },
      schema: {
        tags,
        summary: 'Server-sent events of a job (text/event-stream) for live UIs',
        description: 'Each event is sent with `id: <seq>` and `event: <name>`; reconnect with Last-Event-ID. Ends with `event: end` once the job is final. GET /train/{id}/events with `Accept: text/event-stream` is the same.',
        params: jobIdParams,
        querystring: z.object({ after: z.coerce.number().int().min(0).default(0) }),
      },
    },
    async (req, reply) => {
      const job = await service.getJob(req.params.id);
      await streamEvents(req, reply, service, job.id, req.query.after, async () => (await service.store.getJob(job.id))?.state ?? null);
    },
  );

  app.get(
    '/train/:id/artifacts/:kind',
    {
      config: { role: 'viewer' },
      schema: {
        tags,
        summary: 'Download an artifact of a job (onnx, model_meta, evaluation, roc_png, calibration_png, checkpoint, state_dict)',
        params: artifactParams,
      },
    },
    async (req, reply) => {
      const job = await service.getJob(req.params.id);
      const ref = job.artifacts[req.params.kind];
      if (!ref) throw new AppError('NOT_FOUND', `training job '${job.id}' has no '${req.params.kind}' artifact (has: ${Object.keys(job.artifacts).join(', ') || 'none'})`);
      void storedBytesHeaders(reply, ref.contentType, ref.file).header('x-content-sha256', ref.sha256);
      return reply.send(await service.platform.objects.getStream(ref.key));
    },
  );
};
