import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import { AppError } from '../errors.js';
import type { AuditLog } from '../audit/index.js';
import type { Cache } from '../cache/index.js';
import { isAuditedCount } from '../auth/auth-guard.js';

export interface RateLimitSettings {
  /** Requests per address per window (0 = no limit). */
  perIp: number;
  /** Requests per authenticated caller (key id, person) per window (0 = no limit). */
  perCaller: number;
  windowSeconds: number;
}

export interface RateLimitOptions extends RateLimitSettings {
  /** Names the counters (`<namespace>:ratelimit:<app>:…` in Redis): limits are per service, shared by its replicas. */
  app: string;
  /** The Redis client to count in (scaled mode); absent: in this process's memory. */
  redis?: Redis;
  namespace: string;
  /** Where the aggregated 429 audit counts live (the platform cache). */
  cache: Cache;
  audit?: AuditLog;
}

type Limiter = (req: FastifyRequest) => Promise<{ isAllowed: true } | { isAllowed: false; isExceeded: boolean; ttlInSeconds: number; max: number }>;

/** One @fastify/rate-limit counter in its own scope, so each dimension has its own key, limit and store prefix. */
async function limiter(app: FastifyInstance, o: RateLimitOptions, dimension: 'ip' | 'caller', max: number, key: (req: FastifyRequest) => string): Promise<Limiter> {
  let made: Limiter | undefined;
  await app.register(async (scope) => {
    await scope.register(rateLimit, {
      global: false,
      max,
      timeWindow: o.windowSeconds * 1000,
      keyGenerator: key,
      ...(o.redis ? { redis: o.redis } : {}),
      nameSpace: `${o.namespace}:ratelimit:${o.app}:${dimension}:`,
      // Redis away: serve rather than refuse everyone (the lockout of wrong keys fails closed on its own).
      skipOnError: true,
    });
    made = scope.createRateLimit() as Limiter;
  });
  return made!;
}

/** Routes declaring `config.rateLimit: false` (probes and scrapes: /health, /ready, /metrics). */
function exempt(req: FastifyRequest): boolean {
  return req.routeOptions.config?.rateLimit === false;
}

/**
 * Request rate limits with @fastify/rate-limit: per client address on every request (before
 * authentication, so unauthenticated floods are cut before keys are looked up), and per
 * authenticated caller after it — call the returned `afterAuth` once the auth hook is installed.
 * Counters live in Redis when one is given (replicas of a service share them), else in memory.
 * A refusal is `429 RATE_LIMITED` with Retry-After; refusals are audited aggregated (the 1st,
 * 10th, 100th, … per limited address or caller in a window, each with its running count).
 * Routes declaring `config.rateLimit: false` (probes, scrapes) are never limited.
 */
export async function installRateLimits(app: FastifyInstance, o: RateLimitOptions): Promise<{ afterAuth(): void }> {
  const refuse = async (req: FastifyRequest, subject: string, actor: string, max: number, retryAfter: number): Promise<AppError> => {
    const n = await o.cache.increment(`ratelimit:deny:${o.app}:${subject}`, o.windowSeconds).catch(() => 1);
    if (isAuditedCount(n)) {
      o.audit?.record({
        actor,
        action: 'access.rate_limited',
        resource: subject,
        outcome: 'denied',
        requestId: req.id,
        service: o.app,
        details: { count_in_window: n, limit: max, window_s: o.windowSeconds, route: `${req.method} ${req.routeOptions.url ?? 'unmatched'}` },
      });
    }
    const who = subject.startsWith('ip:') ? 'this address' : 'this caller';
    return new AppError('RATE_LIMITED', `too many requests from ${who} (${max} per ${o.windowSeconds} s); retry in ${retryAfter} s`, { retryAfter });
  };

  if (o.perIp > 0) {
    const ip = (req: FastifyRequest) => `ip:${normalizeIP(req.ip)}`;
    const byIp = await limiter(app, o, 'ip', o.perIp, ip);
    app.addHook('onRequest', async (req) => {
      if (exempt(req)) return;
      const r = await byIp(req);
      if (!r.isAllowed && r.isExceeded) throw await refuse(req, ip(req), 'anonymous', r.max, Math.max(1, r.ttlInSeconds));
    });
  }
  const byCaller = o.perCaller > 0 ? await limiter(app, o, 'caller', o.perCaller, (req) => `caller:${req.principal.id}`) : null;
  return {
    afterAuth() {
      if (!byCaller) return;
      app.addHook('onRequest', async (req) => {
        // Auth off (everyone the local admin) and the platform's own service calls: the address limit only.
        const p = req.principal as FastifyRequest['principal'] | null;
        if (!p || p.anonymous || p.id.startsWith('service:') || exempt(req)) return;
        const r = await byCaller(req);
        if (!r.isAllowed && r.isExceeded) throw await refuse(req, `caller:${p.id}`, p.name, r.max, Math.max(1, r.ttlInSeconds));
      });
    },
  };
}
