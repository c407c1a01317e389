import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../http/schemas.js';
import type { AuditLog } from '../audit/index.js';
import type { ApiKeyInfo, ApiKeyStore } from './key-store.js';
import { ROLES } from './roles.js';

export const apiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  created_at: z.number(),
  expires_at: z.number().nullable(),
  last_used_at: z.number().nullable(),
  revoked_at: z.number().nullable(),
  /** active | expired | revoked | rotating (revoked at the end of a rotation's grace period). */
  status: z.enum(['active', 'expired', 'revoked', 'rotating']),
});
export const createdKeySchema = apiKeySchema.extend({ key: z.string().describe('The plain key: shown once, only its hash is kept.') });
export const createKeyBody = z.object({
  name: z.string().min(1).max(200),
  role: z.enum(ROLES),
  expires_in_days: z.number().positive().max(3650).optional().describe('Days until the key stops working; absent = no expiry.'),
});
export const rotateKeyBody = z.object({
  grace_seconds: z.number().int().min(0).max(30 * 86400).default(0).describe('How long the old key keeps working, so its users can switch over.'),
});

function toView(k: ApiKeyInfo, now = Date.now()): z.infer<typeof apiKeySchema> {
  const status = k.revokedAt !== null && k.revokedAt <= now ? 'revoked' : k.expiresAt !== null && k.expiresAt <= now ? 'expired' : k.revokedAt !== null ? 'rotating' : 'active';
  return { id: k.id, name: k.name, role: k.role, created_at: k.createdAt, expires_at: k.expiresAt, last_used_at: k.lastUsedAt, revoked_at: k.revokedAt, status };
}

/** API key management (admin): list, create, rotate, revoke — what `xray keys` calls. Every change is audited. */
export function keyRoutes(app: FastifyInstance, keys: ApiKeyStore, audit: AuditLog): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['keys'];
  const idParams = z.object({ id: z.string().min(1).max(100) });

  r.get('/keys', { config: { role: 'admin' }, schema: { tags, summary: 'API keys (never the keys themselves): role, expiry, last use, status', response: { 200: z.object({ items: z.array(apiKeySchema) }), ...errorResponses } } }, async () => ({
    items: (await keys.list()).map((k) => toView(k)),
  }));

  r.post(
    '/keys',
    { config: { role: 'admin' }, schema: { tags, summary: 'Create an API key for a machine (people sign in with OIDC)', body: createKeyBody, response: { 201: createdKeySchema, ...errorResponses } } },
    async (req, reply) => {
      const expiresAt = req.body.expires_in_days ? Date.now() + Math.round(req.body.expires_in_days * 86400_000) : null;
      const { key, info } = await keys.create(req.body.name, req.body.role, { expiresAt });
      audit.record({ actor: req.principal.name, action: 'key.create', resource: `key:${info.id}`, requestId: req.id, service: 'monitoring', details: { name: info.name, role: info.role, expires_at: info.expiresAt } });
      void reply.status(201);
      return { ...toView(info), key };
    },
  );

  r.post(
    '/keys/:id/rotate',
    { config: { role: 'admin' }, schema: { tags, summary: 'Rotate a key: a new key with the same name, role and expiry; the old one revoked now or after a grace period', params: idParams, body: rotateKeyBody, response: { 200: createdKeySchema.extend({ previous: apiKeySchema }), ...errorResponses } } },
    async (req) => {
      const { key, info, previous } = await keys.rotate(req.params.id, req.body.grace_seconds);
      audit.record({ actor: req.principal.name, action: 'key.rotate', resource: `key:${previous.id}`, requestId: req.id, service: 'monitoring', details: { new_key: info.id, old_revoked_at: previous.revokedAt } });
      return { ...toView(info), key, previous: toView(previous) };
    },
  );

  r.delete(
    '/keys/:id',
    { config: { role: 'admin' }, schema: { tags, summary: 'Revoke a key now', params: idParams, response: { 200: apiKeySchema, ...errorResponses } } },
    async (req) => {
      await keys.revoke(req.params.id);
      audit.record({ actor: req.principal.name, action: 'key.revoke', resource: `key:${req.params.id}`, requestId: req.id, service: 'monitoring' });
      return toView(await keys.get(req.params.id));
    },
  );
}
