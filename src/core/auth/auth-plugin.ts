import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import { hasRole, type Principal, type RouteAccess } from './roles.js';
import type { ApiKeyStore } from './key-store.js';
import type { AuditLog } from '../audit/index.js';
import type { Cache } from '../cache/index.js';
import { AuthGuard, type AuthGuardOptions } from './auth-guard.js';
import { SERVICE_TOKEN_HEADER } from './service-token.js';
import { SESSION_COOKIE, looksLikeJwt, readCookie, verifySession } from './session.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    /** The caller's sign-in session token when they were authenticated by one (forwarded on their behalf). */
    sessionToken: string | null;
  }
  interface FastifyContextConfig {
    /** Minimum role for the route, or 'public'. Every route must declare it. */
    role?: RouteAccess;
  }
}

export interface AuthOptions {
  enabled: boolean;
  keys: ApiKeyStore;
  audit?: AuditLog;
  service: string;
  /** Lockout after repeated wrong keys, and aggregated denial audit (omit: every denial audited, no lockout). */
  guard?: { cache: Cache } & AuthGuardOptions;
  /**
   * Verifies an `X-Service-Token` for this service: the calling service's name, or null. A call a
   * service makes on its own behalf (no caller's key to forward: following the production alias,
   * logging a training run) authenticates with it as `service:<name>` in the role SERVICE_ROLE.
   */
  serviceCaller?: (token: string) => Promise<string | null>;
  /**
   * Key verifying sign-in sessions (derived from XRAY_SESSION_SECRET; omit: sessions not accepted).
   * A session comes in the `xray_session` cookie (a browser, through the gateway) or as
   * `Authorization: Bearer <session JWT>` (a service calling on the person's behalf).
   */
  sessionKey?: Uint8Array;
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** What another platform service may do on its own behalf: read, register and track, never administer. */
export const SERVICE_ROLE = 'ml-engineer' as const;

const LOCAL_ADMIN: Principal = Object.freeze({ id: 'local', name: 'local-admin', role: 'admin', anonymous: true });
const ANONYMOUS: Principal = Object.freeze({ id: 'anonymous', name: 'anonymous', role: 'viewer', anonymous: true });
/** Routes added by third-party plugins (OpenAPI UI) are public. */
const PUBLIC_PREFIXES = ['/docs'];

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function presentedKey(req: FastifyRequest): string | null {
  const auth = req.headers.authorization;
  if (auth && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim() || null;
  const header = req.headers['x-api-key'];
  return typeof header === 'string' && header ? header : null;
}

/** The caller's credential as an Authorization header, for a call made on their behalf to another service (an API key or their session). */
export function forwardedCredential(req: FastifyRequest): string | undefined {
  if (req.sessionToken) return `Bearer ${req.sessionToken}`;
  const key = presentedKey(req);
  return key ? `Bearer ${key}` : undefined;
}

/**
 * Resolves the caller from `Authorization: Bearer <key>` or `X-API-Key` and enforces the role each
 * route declares in `config.role`. A route registered without a role fails the boot, so no route
 * can be written without one. Denials land in the audit trail.
 */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: AuthOptions) => {
    app.decorateRequest('principal', null as unknown as Principal);
    app.decorateRequest('sessionToken', null);

    app.addHook('onRoute', (route) => {
      const role = (route.config as { role?: RouteAccess } | undefined)?.role;
      if (!role && !PUBLIC_PREFIXES.some((p) => route.url.startsWith(p)) && route.method !== 'HEAD') {
        throw new Error(`route ${String(route.method)} ${route.url} declares no role (config.role)`);
      }
    });

    const guard = opts.guard ? new AuthGuard(opts.guard.cache, opts.audit, opts.service, opts.guard) : null;
    app.addHook('onRequest', async (req) => {
      const config = req.routeOptions.config as { role?: RouteAccess } | undefined;
      const access: RouteAccess = config?.role ?? (PUBLIC_PREFIXES.some((p) => req.url.startsWith(p)) ? 'public' : 'admin');
      if (!opts.enabled) {
        req.principal = LOCAL_ADMIN;
        return;
      }
      let key = presentedKey(req);
      // A session: a bearer shaped like a JWT (never an API key), or the sign-in cookie.
      let session: { token: string; via: 'cookie' | 'header' } | null = null;
      if (opts.sessionKey) {
        if (key && looksLikeJwt(key)) {
          session = { token: key, via: 'header' };
          key = null;
        } else if (!key) {
          const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
          if (cookie) session = { token: cookie, via: 'cookie' };
        }
      }
      const prefix = key ? key.slice(0, 8) : null;
      if (key && guard && (await guard.locked(req.ip, prefix))) {
        req.principal = ANONYMOUS;
        throw new AppError('RATE_LIMITED', `too many wrong API keys from this address; locked out for up to ${guard.lockoutSeconds} s`, { retryAfter: guard.lockoutSeconds });
      }
      let info: { id: string; name: string; role: Principal['role'] } | null = key ? await opts.keys.resolve(key) : null;
      const serviceToken = req.headers[SERVICE_TOKEN_HEADER];
      if (!key && opts.serviceCaller && typeof serviceToken === 'string' && serviceToken) {
        const caller = await opts.serviceCaller(serviceToken);
        if (caller) info = { id: `service:${caller}`, name: `service:${caller}`, role: SERVICE_ROLE };
      }
      let sessionProblem: string | null = null;
      if (!info && session && opts.sessionKey) {
        const verified = await verifySession(opts.sessionKey, session.token);
        if ('user' in verified) {
          info = { id: verified.user.id, name: verified.user.name, role: verified.user.role };
          req.sessionToken = session.token;
          // Defence in depth besides SameSite=Strict: a state-changing request carried by the cookie
          // must come from a page (Origin present — the origin check already refused foreign ones).
          if (session.via === 'cookie' && STATE_CHANGING.has(req.method) && req.headers.origin === undefined) {
            req.principal = ANONYMOUS;
            throw new AppError('FORBIDDEN', 'a state-changing request signed in by the session cookie must carry an Origin header');
          }
        } else sessionProblem = verified.problem;
      }
      req.principal = info ? { id: info.id, name: info.name, role: info.role, anonymous: false } : ANONYMOUS;
      if (key && !info && guard && (await guard.failed(req.ip, prefix, req.id))) {
        throw new AppError('RATE_LIMITED', `too many wrong API keys from this address; locked out for ${guard.lockoutSeconds} s`, { retryAfter: guard.lockoutSeconds });
      }
      if (access === 'public') return;
      const deny = async (code: 'UNAUTHENTICATED' | 'FORBIDDEN', message: string) => {
        const resource = `${req.method} ${req.routeOptions.url ?? pathOf(req.url)}`;
        if (guard) await guard.denied({ ip: req.ip, actor: req.principal.name, resource, reason: code, required: access, requestId: req.id });
        else {
          opts.audit?.record({
            actor: req.principal.name,
            action: 'access.denied',
            resource,
            outcome: 'denied',
            requestId: req.id,
            service: opts.service,
            details: { reason: code, required: access },
          });
        }
        return new AppError(code, message);
      };
      if (!info) {
        throw await deny('UNAUTHENTICATED', key ? 'unknown or revoked API key' : sessionProblem ?? 'an API key is required (Authorization: Bearer <key> or X-API-Key), or a sign-in session');
      }
      if (!hasRole(info.role, access)) throw await deny('FORBIDDEN', `role '${info.role}' may not do this; '${access}' or higher is required`);
    });
  },
  { name: 'auth' },
);
