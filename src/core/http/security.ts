import type { FastifyInstance, FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import { AppError } from '../errors.js';
import { isActiveContentType } from './safe-content.js';

export interface SecurityOptions {
  /** Origins allowed to make state-changing requests besides the request's own host (XRAY_CORS_ORIGINS). */
  allowedOrigins: readonly string[];
  /** Host headers accepted on state-changing requests; empty = any (XRAY_ALLOWED_HOSTS). */
  allowedHosts: readonly string[];
  /** Send HSTS (only behind TLS). */
  hsts: boolean;
  /** The CSP for HTML pages this app serves (the gateway's UI); services default to `default-src 'none'`. */
  pageCsp?: string;
  /** URL prefixes whose own pages (OpenAPI UI) keep their own CSP needs. */
  cspExempt?: readonly string[];
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The path of a request without its query string — what logs and audit records may show. */
export function pathOnly(url: string): string {
  const i = url.indexOf('?');
  return i === -1 ? url : url.slice(0, i);
}

/**
 * Refuses a state-changing request whose `Origin` is neither the request's own host nor an
 * allowed origin, and (when allowed hosts are configured) whose `Host` is not one of them — 403,
 * auth on or off. Requests without `Origin` (CLI, curl, service to service) pass.
 */
export function checkOrigin(req: FastifyRequest, opts: SecurityOptions): void {
  if (!STATE_CHANGING.has(req.method)) return;
  const host = String(req.headers.host ?? '').toLowerCase();
  if (opts.allowedHosts.length && !opts.allowedHosts.includes(host)) {
    throw new AppError('FORBIDDEN', 'unexpected Host header for a state-changing request');
  }
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let originHost: string;
  try {
    originHost = origin === 'null' ? '' : new URL(String(origin)).host.toLowerCase();
  } catch {
    originHost = '';
  }
  if (originHost && originHost === host) return;
  const forwardedHost = String(req.headers['x-forwarded-host'] ?? '').toLowerCase();
  if (originHost && forwardedHost && originHost === forwardedHost) return;
  if (opts.allowedOrigins.includes(String(origin).replace(/\/$/, ''))) return;
  throw new AppError('FORBIDDEN', `cross-origin request from '${String(origin)}' refused (allow it with XRAY_CORS_ORIGINS)`);
}

/**
 * Safe responses on every app: helmet's headers (nosniff, frame-ancestors none via CSP and
 * X-Frame-Options, Referrer-Policy no-referrer, HSTS only when configured for TLS), a strict CSP,
 * the origin check on state-changing routes, and a last line of defence that turns any active
 * content type (HTML, SVG, XML, script) outside the app's own pages into an octet-stream attachment.
 */
export async function installSecurity(app: FastifyInstance, opts: SecurityOptions): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: false,
    hsts: opts.hsts ? { maxAge: 31536000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
    crossOriginEmbedderPolicy: false,
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  const exempt = opts.cspExempt ?? [];
  app.addHook('onRequest', async (req) => checkOrigin(req, opts));
  app.addHook('onSend', async (req, reply, payload) => {
    const url = pathOnly(req.url);
    const isExempt = exempt.some((p) => url === p || url.startsWith(`${p}/`));
    const type = String(reply.getHeader('content-type') ?? '');
    if (!reply.hasHeader('x-content-type-options')) void reply.header('x-content-type-options', 'nosniff');
    if (isExempt) return payload;
    // The gateway's own pages, scripts and styles (everything outside /api/) are the UI itself.
    const ownUi = opts.pageCsp !== undefined && !url.startsWith('/api/');
    if (isActiveContentType(type) && !ownUi) {
      void reply.type('application/octet-stream').header('content-disposition', 'attachment; filename="download"');
      void reply.header('content-security-policy', "default-src 'none'; sandbox");
      return payload;
    }
    if (!reply.hasHeader('content-security-policy')) {
      void reply.header('content-security-policy', opts.pageCsp && !url.startsWith('/api/') ? opts.pageCsp : "default-src 'none'; frame-ancestors 'none'");
    }
    return payload;
  });
}

/** The UI's CSP: scripts and styles only from our origin, no inline script, no framing. */
export const UI_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
