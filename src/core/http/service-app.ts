import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import multipart from '@fastify/multipart';
import { serializerCompiler, validatorCompiler, jsonSchemaTransform, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Platform } from '../platform.js';
import { authPlugin } from '../auth/index.js';
import { serviceIdentityPlugin } from '../auth/service-identity.js';
import { deriveSessionKeys } from '../auth/session.js';
import { httpsServerOptions, reloadOnChange, requireClientCertificates } from './tls.js';
import type { Server as TlsServer } from 'node:tls';
import { installErrorHandlers } from './error-handler.js';
import { metricsPlugin } from './metrics.js';
import { installSecurity, pathOnly } from './security.js';
import { installRateLimits } from './rate-limit.js';
import { Histogram } from 'prom-client';

declare module 'fastify' {
  interface FastifyInstance {
    platform: Platform;
    /** Readiness checks beyond the shared stores; a service adds its own. */
    readiness: Map<string, () => Promise<boolean>>;
  }
  interface FastifyRequest {
    /** Durability.mark() when the request began: its response waits for what was queued since. */
    durableMark: number;
  }
}

export interface ServicePluginOptions {
  platform: Platform;
}

export interface ServiceAppOptions {
  /** Service name, e.g. 'model-registry'. */
  name: string;
  title: string;
  description: string;
  version?: string;
  platform: Platform;
  plugin: FastifyPluginAsync<ServicePluginOptions>;
  /** Log requests (off in tests to keep output readable). */
  logRequests?: boolean;
}

/**
 * Request logs name the path, never the query string: queries may carry identifiers or keys
 * (`?patient=…`, `?api_key=…`), and logs travel further than the database.
 */
class PathOnlyLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.info({ req: { method: request.method, url: pathOnly(request.url), host: request.host, remoteAddress: request.ip } }, 'incoming request');
  }

  override routeNotFound(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.info(`Route ${request.method}:${pathOnly(request.url)} not found`);
  }
}

/** Raw-body content types accepted for image uploads (besides multipart). */
export const RAW_BODY_TYPES = ['image/png', 'image/jpeg', 'application/dicom', 'application/octet-stream'];

/**
 * Builds one service's Fastify app (not listening): logging with request ids, zod validation,
 * the error envelope, auth, Prometheus metrics, /health, /ready and OpenAPI at /docs — then the
 * service's own plugin.
 */
export async function createServiceApp(opts: ServiceAppOptions): Promise<FastifyInstance> {
  const { platform } = opts;
  const app = Fastify({
    loggerInstance: platform.logger.child({ service: opts.name }) as FastifyBaseLogger,
    logController: new PathOnlyLogController({ disableRequestLogging: opts.logRequests === false || platform.config.logLevel === 'silent' }),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    bodyLimit: platform.config.maxUploadBytes,
    // On close, idle keep-alive sockets go at once; requests in flight finish first.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // The client behind the gateway / NGINX (XRAY_TRUST_PROXY) is who rate limits and lockouts count.
    trustProxy: platform.config.trustProxy.length ? [...platform.config.trustProxy] : false,
    // A service's plugin may wait on engines at start (Redis for BullMQ, the registry): as long as start-up retries do.
    pluginTimeout: Math.max(10, platform.config.startupTimeoutSeconds) * 1000,
    // HTTPS from XRAY_TLS_*; with a CA, client certificates are asked for (and checked per request).
    ...(platform.config.tls ? { https: httpsServerOptions(platform.config.tls, { clientCertificates: true }) } : {}),
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app as unknown as FastifyInstance);
  const tls = platform.config.tls;
  if (tls) {
    const stop = reloadOnChange(app.server as unknown as TlsServer, tls, platform.logger);
    app.addHook('onClose', async () => stop());
    if (tls.caFile) requireClientCertificates(app as unknown as FastifyInstance);
  }
  app.addHook('onSend', async (req, reply) => {
    void reply.header('x-request-id', req.id);
    // Draining (SIGTERM): every answer closes its connection, so a load balancer holds no idle
    // keep-alive connection to this replica when it closes. Reusing one just as it is closed fails
    // a non-idempotent request (POST /predict) that NGINX may not retry; a refused new connection
    // it retries on another replica.
    if (platform.lifecycle.draining) void reply.header('connection', 'close');
  });
  // Nothing answered is lost: the response waits for the audit and prediction records queued
  // during its request (group commit, a few ms), and fails instead when they cannot be stored.
  app.decorateRequest('durableMark', 0);
  app.addHook('onRequest', async (req) => {
    req.durableMark = platform.durability.mark();
  });
  let waits: Histogram | null = null;
  app.addHook('onSend', async (req, reply, payload) => {
    try {
      const started = performance.now();
      if (await platform.durability.settle(req.durableMark)) {
        waits ??= new Histogram({
          name: 'xray_durable_wait_seconds',
          help: "How long a response waited for its request's audit/prediction records to be stored (group commit)",
          buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
          registers: [app.metrics],
        });
        waits.observe((performance.now() - started) / 1000);
      }
      return payload;
    } catch (err) {
      // Headers are not out yet: replace the answer (the error handler does not run for onSend).
      req.log.error({ err }, 'records of this request could not be stored; not answering success');
      (payload as { destroy?: () => void } | null)?.destroy?.();
      void reply.code(503).header('content-type', 'application/json; charset=utf-8').header('retry-after', '5').removeHeader('content-length');
      return JSON.stringify({
        error: { code: 'SERVICE_UNAVAILABLE', message: 'the audit trail could not be written, so the result of this request is not confirmed; retry shortly' },
      });
    }
  });
  await installSecurity(app as unknown as FastifyInstance, {
    allowedOrigins: platform.config.corsOrigins,
    allowedHosts: platform.config.allowedHosts,
    hsts: platform.config.hsts,
    cspExempt: ['/docs'],
  });
  app.decorate('platform', platform);
  app.decorate('readiness', new Map<string, () => Promise<boolean>>());

  app.addContentTypeParser(RAW_BODY_TYPES, { parseAs: 'buffer', bodyLimit: platform.config.maxUploadBytes }, (_req, body, done) =>
    done(null, body),
  );
  await app.register(multipart, {
    limits: { fileSize: platform.config.maxUploadBytes, files: 1000, fields: 100, fieldSize: 1024 * 1024 },
    throwFileSizeLimit: true,
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: opts.title, description: opts.description, version: opts.version ?? '0.1.0' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
      security: platform.config.auth ? [{ bearer: [] }, { apiKey: [] }] : [],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: false });

  const rateLimits = await installRateLimits(app as unknown as FastifyInstance, {
    ...platform.config.rateLimit,
    app: opts.name,
    redis: platform.cache.redis,
    namespace: platform.config.redisNamespace,
    cache: platform.cache,
    audit: platform.audit,
  });
  await app.register(authPlugin, {
    enabled: platform.config.auth,
    keys: platform.keys,
    audit: platform.audit,
    service: opts.name,
    guard: { cache: platform.cache, ...platform.config.authGuard },
    serviceCaller: async (token) => {
      const result = await platform.transport.verify(token, opts.name);
      return 'caller' in result ? result.caller : null;
    },
    sessionKey: platform.config.session ? deriveSessionKeys(platform.config.session.secret).session : undefined,
  });
  rateLimits.afterAuth();
  await app.register(serviceIdentityPlugin, {
    service: opts.name,
    transport: platform.transport,
    enforceInternal: platform.config.auth || Boolean(platform.config.serviceTokenSecret) || Boolean(platform.config.tls?.caFile),
    audit: platform.audit,
  });
  await app.register(metricsPlugin, { service: opts.name, token: platform.config.metricsToken || undefined });

  const health = z.object({ status: z.literal('ok'), service: z.string(), uptime_s: z.number() });
  app.get('/health', { config: { role: 'public', rateLimit: false }, schema: { tags: ['health'], summary: 'Liveness', response: { 200: health } } }, async () => ({
    status: 'ok' as const,
    service: opts.name,
    uptime_s: Math.round(process.uptime() * 10) / 10,
  }));

  const ready = z.object({ status: z.enum(['ready', 'not_ready']), service: z.string(), checks: z.record(z.string(), z.boolean()) });
  app.get(
    '/ready',
    { config: { role: 'public', rateLimit: false }, schema: { tags: ['health'], summary: 'Readiness: every store this service needs answers', response: { 200: ready, 503: ready } } },
    async (_req, reply) => {
      const checks: Record<string, () => Promise<boolean>> = {
        accepting: async () => !platform.lifecycle.draining,
        database: () => platform.database.ping(),
        objects: () => platform.objects.ping(),
        cache: () => platform.cache.ping(),
        queue: () => platform.queue.ping(),
        ...Object.fromEntries(app.readiness),
      };
      const results = Object.fromEntries(
        await Promise.all(Object.entries(checks).map(async ([k, fn]) => [k, await fn().catch(() => false)] as const)),
      );
      const ok = Object.values(results).every(Boolean);
      void reply.status(ok ? 200 : 503);
      return { status: ok ? ('ready' as const) : ('not_ready' as const), service: opts.name, checks: results };
    },
  );

  await app.register(opts.plugin, { platform });
  return app as unknown as FastifyInstance;
}
