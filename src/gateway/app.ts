import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import fastifyStatic from '@fastify/static';
import { SERVICE_NAMES, type Config, type ServiceName } from '../core/config/index.js';
import { installErrorHandlers, routeNotFound } from '../core/http/error-handler.js';
import type { Logger } from 'pino';
import { installSecurity, UI_CSP } from '../core/http/security.js';
import { httpsServerOptions, reloadOnChange } from '../core/http/tls.js';
import { ServiceTransport } from '../core/http/service-transport.js';
import { SERVICE_TOKEN_HEADER } from '../core/auth/service-token.js';
import type { Server as TlsServer } from 'node:tls';
import { registerSignIn } from './oidc.js';

// The gateway never passes on a service token: people and machines behind it are not services.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'proxy-connection', 'te', 'trailer', SERVICE_TOKEN_HEADER]);

/**
 * The gateway on :8080: the built web UI as static files, and `/api/<service>/…` proxied to the
 * service (bodies streamed both ways, so large uploads are not buffered here). With XRAY_TLS_* it
 * serves HTTPS (no client certificate asked of browsers) and reaches the services over HTTPS,
 * presenting the platform's client certificate when they require mTLS.
 */
export async function buildGatewayApp(config: Config, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger.child({ service: 'gateway' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
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
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.get('/health', async () => ({ status: 'ok', service: 'gateway' }));
  registerSignIn(app, { config, logger });
  app.get('/api/services', async () => ({
    services: await Promise.all(
      SERVICE_NAMES.map(async (name) => {
        const url = config.serviceUrls[name];
        const ready = await transport.fetch(`${url}/ready`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
        return { name, url: `/api/${name}`, ready };
      }),
    ),
  }));

  app.all('/api/:service/*', async (req, reply) => {
    const { service } = req.params as { service: string; '*': string };
    if (!(SERVICE_NAMES as readonly string[]).includes(service)) {
      return reply.status(404).send({ error: { code: 'ROUTE_NOT_FOUND', message: `unknown service '${service}'; use one of ${SERVICE_NAMES.join(', ')}` } });
    }
    const rest = req.url.slice(`/api/${service}`.length) || '/';
    const target = config.serviceUrls[service as ServiceName] + rest;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    headers['x-forwarded-prefix'] = `/api/${service}`;
    // The service's origin check compares the browser's Origin with the host the browser used.
    if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD' && req.body !== undefined;
    let upstream: Response;
    try {
      upstream = await transport.fetch(target, {
        method: req.method,
        headers,
        body: hasBody ? (Readable.toWeb(req.body as Readable) as ReadableStream) : undefined,
        duplex: 'half',
        redirect: 'manual',
      });
    } catch {
      return reply.status(503).send({ error: { code: 'SERVICE_UNAVAILABLE', message: `service '${service}' is not reachable` } });
    }
    reply.status(upstream.status);
    upstream.headers.forEach((value, key) => {
      if (!HOP_BY_HOP.has(key) && key !== 'content-encoding') void reply.header(key, value);
    });
    return reply.send(upstream.body ? Readable.fromWeb(upstream.body as never) : '');
  });

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
