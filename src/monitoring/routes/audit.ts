import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../../core/http/index.js';
import { invalidInput } from '../../core/errors.js';
import type { AuditLog, AuditRecord } from '../../core/audit/index.js';
import { auditQuery, auditRecordSchema, toEpochMs, verifySchema } from './schemas.js';

const TAGS = ['audit'];

function toView(r: AuditRecord): z.infer<typeof auditRecordSchema> {
  return {
    seq: r.seq,
    id: r.id,
    time: r.time,
    actor: r.actor,
    action: r.action,
    resource: r.resource,
    outcome: r.outcome,
    request_id: r.requestId,
    service: r.service,
    details: r.details,
    prev_hash: r.prevHash,
    hash: r.hash,
  };
}

export function auditRoutes(app: FastifyInstance, audit: AuditLog): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get(
    '/audit',
    {
      config: { role: 'admin' },
      schema: {
        tags: TAGS,
        summary: 'Search the audit trail, newest first',
        description:
          'Append-only records of every prediction, ingest, training run, registration/promotion, configuration change and access denial, with actor and request id. ' +
          'Filters combine; since/until take epoch ms or ISO 8601.',
        querystring: auditQuery,
        response: { 200: z.object({ items: z.array(auditRecordSchema), next_page_token: z.string().optional() }), ...errorResponses },
      },
    },
    async (req) => {
      const q = req.query;
      const since = toEpochMs(q.since);
      const until = toEpochMs(q.until);
      if ((since !== undefined && !Number.isFinite(since)) || (until !== undefined && !Number.isFinite(until))) {
        throw invalidInput('since/until must be epoch milliseconds or ISO 8601 date-times');
      }
      if (q.page_token !== undefined && !/^\d+$/.test(q.page_token)) throw invalidInput('invalid page_token');
      const page = await audit.query({
        ...(q.actor ? { actor: q.actor } : {}),
        ...(q.action ? { action: q.action } : {}),
        ...(q.resource ? { resource: q.resource } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        pageSize: q.page_size,
        ...(q.page_token ? { pageToken: q.page_token } : {}),
      });
      return { items: page.items.map(toView), ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}) };
    },
  );

  r.get(
    '/audit/verify',
    {
      config: { role: 'admin' },
      schema: {
        tags: TAGS,
        summary: 'Check the hash chain of the audit trail',
        description: 'Walks every record in order; reports the first record whose content, link to the previous record or sequence number does not match.',
        response: { 200: verifySchema, ...errorResponses },
      },
    },
    async () => {
      const v = await audit.verify();
      return {
        ok: v.ok,
        checked: v.checked,
        ...(v.firstBrokenSeq !== undefined ? { first_broken_seq: v.firstBrokenSeq } : {}),
        ...(v.reason ? { reason: v.reason } : {}),
      };
    },
  );
}
