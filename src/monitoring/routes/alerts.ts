import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses, pageQuery } from '../../core/http/index.js';
import { AppError } from '../../core/errors.js';
import type { MonitoringContext } from '../service/context.js';
import type { ChannelInput, RetryPolicy } from '../store/types.js';
import {
  alertQuery,
  alertSchema,
  channelBody,
  channelSchema,
  deadLetterSchema,
  idParams,
  toAlertView,
  toChannelView,
  toDeadLetterView,
} from './schemas.js';

const TAGS = ['alerts'];

function toRetry(r: { attempts?: number; initial_delay_ms?: number; max_delay_ms?: number } | undefined): Partial<RetryPolicy> | undefined {
  if (!r) return undefined;
  return {
    ...(r.attempts !== undefined ? { attempts: r.attempts } : {}),
    ...(r.initial_delay_ms !== undefined ? { initialDelayMs: r.initial_delay_ms } : {}),
    ...(r.max_delay_ms !== undefined ? { maxDelayMs: r.max_delay_ms } : {}),
  };
}

function toChannelInput(b: z.infer<typeof channelBody>): ChannelInput {
  const retry = toRetry(b.retry);
  if (b.kind === 'webhook') {
    return {
      name: b.name,
      kind: 'webhook',
      minSeverity: b.min_severity,
      enabled: b.enabled,
      settings: {
        url: b.url,
        format: b.format,
        ...(b.headers ? { headers: b.headers } : {}),
        ...(b.timeout_ms ? { timeoutMs: b.timeout_ms } : {}),
        ...(retry ? { retry } : {}),
      },
    };
  }
  return {
    name: b.name,
    kind: 'email',
    minSeverity: b.min_severity,
    enabled: b.enabled,
    settings: { smtpUrl: b.smtp_url, from: b.from, to: b.to, ...(b.timeout_ms ? { timeoutMs: b.timeout_ms } : {}), ...(retry ? { retry } : {}) },
  };
}

export function alertRoutes(app: FastifyInstance, ctx: MonitoringContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get(
    '/alerts',
    {
      config: { role: 'viewer' },
      schema: {
        tags: TAGS,
        summary: 'List alerts, most recently seen first',
        querystring: alertQuery,
        response: { 200: z.object({ items: z.array(alertSchema), next_page_token: z.string().optional() }), ...errorResponses },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await ctx.alerts.list({ status: q.status, severity: q.severity, model: q.model, rule: q.rule, pageSize: q.page_size, pageToken: q.page_token });
      return { items: page.items.map(toAlertView), ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );

  r.post(
    '/alerts/evaluate',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Evaluate the traffic alert rules now (latency, error rate, positive-rate jump)',
        response: {
          200: z.object({
            results: z.array(z.object({ rule: z.string(), model: z.string(), version: z.string(), firing: z.boolean(), value: z.number(), threshold: z.number() })),
          }),
          ...errorResponses,
        },
      },
    },
    async () => ({ results: await ctx.evaluateRules() }),
  );

  r.get(
    '/alerts/channels',
    {
      config: { role: 'admin' },
      schema: { tags: TAGS, summary: 'List notification channels (secrets redacted)', response: { 200: z.object({ items: z.array(channelSchema) }), ...errorResponses } },
    },
    async () => ({ items: (await ctx.alerts.channels()).map(toChannelView) }),
  );

  r.post(
    '/alerts/channels',
    {
      config: { role: 'admin' },
      schema: {
        tags: TAGS,
        summary: 'Add a notification channel',
        description:
          'webhook: POSTs Slack-compatible JSON ({text, blocks}) or, with format "alertmanager", Alertmanager\'s webhook payload (version 4). email: SMTP via nodemailer. ' +
          'Each delivery is retried with exponential backoff; after the last failed attempt a dead-letter record is kept (GET /alerts/dead-letters).',
        body: channelBody,
        response: { 201: channelSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const channel = await ctx.alerts.createChannel(toChannelInput(req.body), req.principal.name, req.id);
      void reply.status(201);
      return toChannelView(channel);
    },
  );

  r.delete(
    '/alerts/channels/:id',
    {
      config: { role: 'admin' },
      schema: { tags: TAGS, summary: 'Remove a notification channel', params: idParams, response: { 204: z.null(), ...errorResponses } },
    },
    async (req, reply) => {
      if (req.params.id.startsWith('env-')) throw new AppError('CONFLICT', 'channels configured by environment variables cannot be deleted here');
      await ctx.alerts.deleteChannel(req.params.id, req.principal.name, req.id);
      void reply.status(204);
      return null;
    },
  );

  r.get(
    '/alerts/dead-letters',
    {
      config: { role: 'ml-engineer' },
      schema: {
        tags: TAGS,
        summary: 'Notifications that could not be delivered after every retry, newest first',
        querystring: pageQuery.extend({ alert_id: z.string().max(200).optional() }),
        response: { 200: z.object({ items: z.array(deadLetterSchema), next_page_token: z.string().optional() }), ...errorResponses },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await ctx.alerts.deadLetters({ alertId: q.alert_id, pageSize: q.page_size, pageToken: q.page_token });
      return { items: page.items.map(toDeadLetterView), ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );

  r.get(
    '/alerts/:id',
    {
      config: { role: 'viewer' },
      schema: { tags: TAGS, summary: 'One alert', params: idParams, response: { 200: alertSchema, ...errorResponses } },
    },
    async (req) => toAlertView(await ctx.alerts.get(req.params.id)),
  );

  r.post(
    '/alerts/:id/ack',
    {
      config: { role: 'ml-engineer' },
      schema: { tags: TAGS, summary: 'Acknowledge an alert (it stays active; repeats are still counted)', params: idParams, response: { 200: alertSchema, ...errorResponses } },
    },
    async (req) => toAlertView(await ctx.alerts.acknowledge(req.params.id, req.principal.name, req.id)),
  );

  r.post(
    '/alerts/:id/resolve',
    {
      config: { role: 'ml-engineer' },
      schema: { tags: TAGS, summary: 'Resolve an alert (the next occurrence opens a new one)', params: idParams, response: { 200: alertSchema, ...errorResponses } },
    },
    async (req) => toAlertView(await ctx.alerts.resolve(req.params.id, req.principal.name, req.id)),
  );
}
