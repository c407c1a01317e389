import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { SERVICE_NAMES } from '../config/index.js';
import { AppError } from '../errors.js';
import type { AuditLog } from '../audit/index.js';
import type { ServiceTransport } from '../http/service-transport.js';
import { verifiedClientName } from '../http/tls.js';
import { pathOnly } from '../http/security.js';
import { SERVICE_TOKEN_HEADER } from './service-token.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The calling service, proven by a service token or an mTLS client certificate; null for people and machines with keys. */
    serviceCaller: string | null;
    /**
     * Whether this request may act as a platform service: it proved a service identity, or this
     * deployment checks none (auth off, no shared secret, no CA: it trusts its network).
     */
    actsAsService: boolean;
  }
  interface FastifyContextConfig {
    /** Only other services may call this route (a service token or a service's client certificate), besides the role check. */
    internal?: boolean;
  }
}

export interface ServiceIdentityOptions {
  /** This service's name: the audience its tokens must carry. */
  service: string;
  transport: ServiceTransport;
  /** Internal routes refuse callers without a service identity (auth on, or a shared secret / CA configured). */
  enforceInternal: boolean;
  audit?: AuditLog;
}

/**
 * Who is calling, as a service: a verified `X-Service-Token` (HS256, short-lived, for this
 * service), or a verified mTLS client certificate whose subject CN is a service name. Routes
 * marked `config.internal` refuse anyone else with 403 — an API key alone, even an admin's, is
 * not enough. Registered after the auth plugin, so only authenticated callers reach this check.
 */
export const serviceIdentityPlugin = fp(
  async (app: FastifyInstance, opts: ServiceIdentityOptions) => {
    app.decorateRequest('serviceCaller', null);
    app.decorateRequest('actsAsService', !opts.enforceInternal);
    app.addHook('onRequest', async (req) => {
      let tokenProblem: string | null = null;
      const token = req.headers[SERVICE_TOKEN_HEADER];
      if (typeof token === 'string' && token) {
        const result = await opts.transport.verify(token, opts.service);
        if ('caller' in result) req.serviceCaller = result.caller;
        else tokenProblem = result.problem;
      }
      if (!req.serviceCaller) {
        const cn = verifiedClientName(req.raw.socket);
        if (cn && (SERVICE_NAMES as readonly string[]).includes(cn)) req.serviceCaller = cn;
      }
      if (req.serviceCaller) req.actsAsService = true;
      const internal = (req.routeOptions.config as { internal?: boolean } | undefined)?.internal === true;
      if (internal && opts.enforceInternal && !req.serviceCaller) {
        const resource = `${req.method} ${req.routeOptions.url ?? pathOnly(req.url)}`;
        opts.audit?.record({
          actor: 'unknown',
          action: 'access.denied',
          resource,
          outcome: 'denied',
          requestId: req.id,
          service: opts.service,
          details: { reason: 'SERVICE_IDENTITY_REQUIRED', problem: tokenProblem ?? 'no service token' },
        });
        throw new AppError(
          'FORBIDDEN',
          `${resource} is internal: only another platform service may call it (${tokenProblem ?? `no ${SERVICE_TOKEN_HEADER} header or service client certificate`})`,
        );
      }
    });
  },
  { name: 'service-identity' },
);
