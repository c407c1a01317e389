import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses, pageQuery } from '../../core/http/index.js';
import type { TrainingService } from '../service/training-service.js';
import { eventView, studyView } from '../service/views.js';
import { eventsQuery, eventsResponse, experimentList, optimizeRequestSchema, runList, studyList, studyView as studyViewSchema } from './schemas.js';
import { ID_PATTERN } from '../service/paths.js';
import { streamEvents, wantsEventStream } from './sse.js';

const caller = (req: FastifyRequest) => ({ actor: req.principal?.name ?? 'anonymous', role: req.principal?.role, requestId: req.id });
const studyParams = z.object({ id: z.string().regex(ID_PATTERN, 'not a study id') });

/** /optimize (Optuna studies) and /experiments (tracking). */
export const optimizeRoutes: FastifyPluginAsync<{ service: TrainingService }> = async (fastify, { service }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/optimize',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: ['optimize'],
        summary: 'Queue a hyper-parameter study (Optuna; objective: validation AUC)',
        description: 'Each trial is a short training run recorded as a tracked run; the pruner stops weak trials early.',
        body: optimizeRequestSchema,
        response: { 202: z.object({ study_id: z.string(), state: z.string() }), ...errorResponses },
      },
    },
    async (req, reply) => {
      const study = await service.submitStudy(req.body, caller(req));
      void reply.status(202);
      return { study_id: study.id, state: study.state };
    },
  );

  app.get(
    '/optimize',
    {
      config: { role: 'viewer' },
      schema: { tags: ['optimize'], summary: 'List studies, newest first', querystring: pageQuery, response: { 200: studyList, ...errorResponses } },
    },
    async (req) => {
      const page = await service.listStudies({ pageSize: req.query.page_size, pageToken: req.query.page_token });
      return { studies: page.items.map((s) => studyView(s)), ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );

  app.get(
    '/optimize/:id',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['optimize'],
        summary: 'A study with its trials (state, value, params, per-epoch AUC) and the best trial',
        params: studyParams,
        response: { 200: studyViewSchema, ...errorResponses },
      },
    },
    async (req) => {
      const { study, trials } = await service.getStudy(req.params.id);
      return studyView(study, trials);
    },
  );

  app.delete(
    '/optimize/:id',
    {
      config: { role: 'ml-engineer' },
      schema: { tags: ['optimize'], summary: 'Cancel a study', params: studyParams, response: { 202: studyViewSchema, ...errorResponses } },
    },
    async (req, reply) => {
      const study = await service.cancelStudy(req.params.id, caller(req));
      void reply.status(202);
      return studyView(study);
    },
  );

  app.get(
    '/optimize/:id/events',
    {
      config: { role: 'viewer' },
      schema: { tags: ['optimize'], summary: 'Events of a study (long poll with ?wait=, or SSE with Accept: text/event-stream)', params: studyParams, querystring: eventsQuery, response: { 200: eventsResponse, ...errorResponses } },
    },
    async (req, reply) => {
      const { study } = await service.getStudy(req.params.id);
      if (wantsEventStream(req)) {
        await streamEvents(req, reply, service, study.id, req.query.after, async () => (await service.store.getStudy(study.id))?.state ?? null);
        return reply;
      }
      const abort = new AbortController();
      reply.raw.once('close', () => abort.abort());
      const { events, done } = await service.waitForEvents(study.id, req.query.after, req.query.wait * 1000, abort.signal);
      const limited = events.slice(0, req.query.limit);
      const state = (await service.store.getStudy(study.id))?.state ?? null;
      return { events: limited.map(eventView), next_after: limited.at(-1)?.seq ?? req.query.after, done: done && limited.length === events.length, state };
    },
  );

  app.get(
    '/experiments',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['experiments'],
        summary: 'Experiments from experiment tracking',
        querystring: pageQuery,
        response: { 200: experimentList, ...errorResponses },
      },
    },
    async (req) => {
      const page = await service.listExperiments({ pageSize: req.query.page_size, pageToken: req.query.page_token });
      return { experiments: page.items, source: page.source, ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );

  app.get(
    '/experiments/:experiment_id/runs',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['experiments'],
        summary: 'Runs of an experiment (params, metrics, tags), newest first',
        params: z.object({ experiment_id: z.string().min(1).max(200) }),
        querystring: pageQuery,
        response: { 200: runList, ...errorResponses },
      },
    },
    async (req) => {
      const page = await service.listRuns(req.params.experiment_id, { pageSize: req.query.page_size, pageToken: req.query.page_token });
      return { runs: page.items as unknown as Record<string, unknown>[], ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );
};
