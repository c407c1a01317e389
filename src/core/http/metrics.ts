import { timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import { AppError } from '../errors.js';
import { Registry, collectDefaultMetrics, Histogram, Counter } from 'prom-client';
import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyInstance {
    /** This service's Prometheus registry; services add their own metrics to it. */
    metrics: Registry;
  }
}

/**
 * Prometheus metrics per service: default process metrics plus an HTTP request histogram,
 * served as text at GET /metrics.
 */
export const metricsPlugin = fp(
  async (app: FastifyInstance, opts: { service: string; token?: string }) => {
    const registry = new Registry();
    registry.setDefaultLabels({ service: opts.service });
    collectDefaultMetrics({ register: registry, prefix: 'xray_' });
    const duration = new Histogram({
      name: 'xray_http_request_duration_seconds',
      help: 'HTTP request duration by method, route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    const requests = new Counter({
      name: 'xray_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    app.decorate('metrics', registry);
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unmatched';
      if (route === '/metrics') return;
      const labels = { method: req.method, route, status: String(reply.statusCode) };
      duration.observe(labels, reply.elapsedTime / 1000);
      requests.inc(labels);
    });
    const expected = opts.token ? Buffer.from(`Bearer ${opts.token}`) : null;
    app.get('/metrics', { config: { role: 'public', rateLimit: false }, schema: { hide: true } }, async (req, reply) => {
      if (expected) {
        const given = Buffer.from(req.headers.authorization ?? '');
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
          throw new AppError('UNAUTHENTICATED', '/metrics needs the scrape token (Authorization: Bearer <XRAY_METRICS_TOKEN>)');
        }
      }
      void reply.type(registry.contentType);
      return registry.metrics();
    });
  },
  { name: 'metrics' },
);
