import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import { SERVICE_NAMES, type Config } from '../core/config/index.js';
import { installErrorHandlers, routeNotFound } from '../core/http/error-handler.js';
import type { Logger } from 'pino';
import { installSecurity, UI_CSP } from '../core/http/security.js';
import { httpsServerOptions, reloadOnChange } from '../core/http/tls.js';
import { ServiceTransport } from '../core/http/service-transport.js';
import type { Server as TlsServer } from 'node:tls';
import { installRateLimits } from '../core/http/rate-limit.js';
import { MemoryCache, type Cache } from '../core/cache/index.js';
import type { AuditLog } from '../core/audit/index.js';
import { signInPlugin } from './oidc.js';
import { serviceProxyPlugin } from './service-proxy.js';

/**
 * The gateway on :8080: the built web UI as static files, and `/api/<service>/…` proxied to the
 * service (bodies streamed both ways, so large uploads are not buffered here). With XRAY_TLS_* it
 * serves HTTPS (no client certificate asked of browsers) and reaches the services over HTTPS,
 * presenting the platform's client certificate when they require mTLS.
 */
export interface GatewayDeps {
  /** Where sign-ins, sign-outs and rate-limit refusals are recorded (the platform's audit trail). */
  audit?: AuditLog;
  /** The platform cache: rate-limit counters live in its Redis when it has one (else in this process). */
  cache?: Cache;
  /** Draining (SIGTERM): `/ready` answers 503 so the load balancer stops sending. */
  lifecycle?: { readonly draining: boolean };
}

export async function buildGatewayApp(config: Config, logger: Logger, deps: GatewayDeps = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger.child({ service: 'gateway' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    trustProxy: config.trustProxy.length ? [...config.trustProxy] : false,
    ...(config.tls ? { https: httpsServerOptions(config.tls, { clientCertificates: false }) } : {}),
  }) as unknown as FastifyInstance;
  const transport = new ServiceTransport({ tls: config.tls, tokenSecret: null, logger });
  app.addHook('onClose', async () => transport.close());
  if (config.tls) {
    const tls = { ...config.tls, caFile: '' }; // browsers are not asked for client certificates
    const stop = reloadOnChange(app.server as unknown as TlsServer, tls, logger);
    app.addHook('onClose', async () => stop());
  }
  const serveWeb = existsSync(path.join(config.webDir, 'index.html'));
  installErrorHandlers(app, { notFound: !serveWeb });
  await installSecurity(app, { allowedOrigins: config.corsOrigins, allowedHosts: config.allowedHosts, hsts: config.hsts, pageCsp: UI_CSP, cspExempt: ['/api/data-pipeline/docs', '/api/training/docs', '/api/model-registry/docs', '/api/deployment/docs', '/api/monitoring/docs'] });
  app.removeAllContentTypeParsers();
  // Bodies pass through as streams (the proxy streams them on; sign-in reads none).
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  const cache: Cache = deps.cache ?? new MemoryCache({ maxEntries: 10_000 });
  if (!deps.cache) app.addHook('onClose', async () => cache.close());
  // Per client address only: callers are identified by the services behind (they count per caller).
  await installRateLimits(app, { ...config.rateLimit, perCaller: 0, app: 'gateway', redis: cache.redis, namespace: config.redisNamespace, cache, audit: deps.audit });

  app.get('/health', { config: { rateLimit: false } }, async () => ({ status: 'ok', service: 'gateway' }));
  app.get('/ready', { config: { rateLimit: false } }, async (_req, reply) =>
    deps.lifecycle?.draining ? reply.status(503).send({ status: 'draining', service: 'gateway' }) : { status: 'ready', service: 'gateway' },
  );
  await app.register(signInPlugin, { config, logger, audit: deps.audit, cache });
  await app.register(serviceProxyPlugin, { config, transport });

  if (serveWeb) {
    await app.register(fastifyStatic, { root: config.webDir, prefix: '/', wildcard: false });
    app.setNotFoundHandler((req, reply) => {
      if (req.method === 'GET' && !req.url.startsWith('/api/')) return reply.sendFile('index.html');
      return reply.status(404).send(routeNotFound(req.method, req.url));
    });
  } else {
    app.get('/', async (_req, reply) =>
      reply.type('text/html').send(
        `<!doctype html><title>xray-mlops</title><h1>xray-mlops</h1><p>The web UI is not built (run <code>npm run setup</code>). APIs: ${SERVICE_NAMES.map((s) => `<a href="/api/${s}/docs">${s}</a>`).join(', ')}</p>`,
      ),
    );
  }
  return app;
}
