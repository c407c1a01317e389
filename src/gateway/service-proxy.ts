import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Readable } from 'node:stream';
import { SERVICE_NAMES, type Config, type ServiceName } from '../core/config/index.js';
import type { ServiceTransport } from '../core/http/service-transport.js';
import { SERVICE_TOKEN_HEADER } from '../core/auth/service-token.js';

// The gateway never passes on a service token: people and machines behind it are not services.
// `expect: 100-continue` is answered here (Node sends the 100); fetch refuses to forward it.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'proxy-connection', 'te', 'trailer', 'expect', SERVICE_TOKEN_HEADER]);

export interface ServiceProxyOptions {
  config: Config;
  transport: ServiceTransport;
}

/**
 * `GET /api/services` (each service's readiness) and `/api/<service>/…` proxied to the service,
 * bodies streamed both ways so large uploads are not buffered here (the gateway hands every body
 * on as a stream: see its content-type parser in app.ts).
 */
async function serviceProxy(app: FastifyInstance, { config, transport }: ServiceProxyOptions): Promise<void> {
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
    // Like NGINX's $proxy_add_x_forwarded_for: the services (trusting this gateway, XRAY_TRUST_PROXY) count the client, not us.
    const peer = req.socket.remoteAddress ?? '';
    headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${peer}` : peer;
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
    } catch (err) {
      req.log.warn({ err, service }, 'proxying to the service failed');
      return reply.status(503).send({ error: { code: 'SERVICE_UNAVAILABLE', message: `service '${service}' is not reachable` } });
    }
    reply.status(upstream.status);
    upstream.headers.forEach((value, key) => {
      if (!HOP_BY_HOP.has(key) && key !== 'content-encoding') void reply.header(key, value);
    });
    return reply.send(upstream.body ? Readable.fromWeb(upstream.body as never) : '');
  });
}

export const serviceProxyPlugin = fp(serviceProxy, { name: 'gateway-proxy', fastify: '5.x' });
