import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { SERVICE_NAMES, testConfig, type ServiceName } from '../../src/core/config/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { ROLES, hasRole, type Role, type RouteAccess } from '../../src/core/auth/index.js';
import { SERVICE_BUILDERS } from '../../src/services.js';
import { tempHome } from '../helpers/engines.js';

/**
 * The route × role matrix, generated from the route table: every route every service registers
 * (collected by an onRoute hook on each Fastify instance as it is created) is called with no key, a
 * wrong key and a key of each role. The expected answer comes from the route's own `config.role`,
 * so a new route is covered without touching this file; only public routes are listed here.
 */
const PUBLIC: readonly string[] = ['GET /health', 'GET /ready', 'GET /metrics', 'GET /v2', 'GET /v2/health/live', 'GET /v2/health/ready'];
const PUBLIC_PREFIXES = ['/docs'];
const PROBE = 'x-route-matrix-probe';

interface Route {
  service: ServiceName;
  method: string;
  url: string;
  access: RouteAccess | undefined;
  internal: boolean;
}

/** A concrete path for a route pattern: every parameter (with or without a regex) and wildcard becomes '1'. */
function concrete(url: string): string {
  return url.replace(/:[A-Za-z0-9_]+(\([^)]*\))?/g, '1').replace(/\*/g, '1');
}

/**
 * The error code of an answer: the platform's envelope, or MLflow's `{error_code}` on the
 * MLflow-compatible routes (PERMISSION_DENIED is its FORBIDDEN); else the start of the body.
 */
function codeOf(res: { statusCode: number; body: string }): string {
  try {
    const body = JSON.parse(res.body) as { error?: { code?: string }; error_code?: string };
    const code = body.error?.code ?? body.error_code;
    if (code) return code === 'PERMISSION_DENIED' ? 'FORBIDDEN' : code;
  } catch {
    /* not JSON */
  }
  return `(${res.body.slice(0, 80)})`;
}

const isPublic = (r: Route) => PUBLIC.includes(`${r.method} ${r.url}`) || PUBLIC_PREFIXES.some((p) => r.url === p || r.url.startsWith(`${p}/`));

describe('route × role matrix over every route of the embedded platform', () => {
  const home = tempHome();
  let platform: Platform;
  const apps = new Map<ServiceName, FastifyInstance>();
  const routes: Route[] = [];
  const keys = new Map<Role, string>();

  before(async () => {
    const seen = new Map<FastifyInstance, { method: string; url: string; config: Record<string, unknown> }[]>();
    // Every Fastify instance created while the services build gets the hooks first, so the whole route table is seen.
    const onInit = (message: unknown) => {
      const { fastify } = message as { fastify: FastifyInstance };
      const list: { method: string; url: string; config: Record<string, unknown> }[] = [];
      seen.set(fastify, list);
      fastify.addHook('onRoute', (route: RouteOptions) => {
        for (const method of [route.method].flat()) list.push({ method, url: route.url, config: (route.config ?? {}) as Record<string, unknown> });
      });
      // Authorization is settled once the onRequest hooks ran: answer there, so no handler runs (no side effects).
      fastify.addHook('preParsing', async (req, reply) => {
        if (req.headers[PROBE] === '1') return reply.code(299).header(PROBE, 'authorized').send();
      });
    };
    diagnostics.subscribe('fastify.initialization', onInit);
    try {
      platform = await openPlatform(
        testConfig(home.dir, {
          XRAY_AUTH: 'on',
          XRAY_ADMIN_KEY: 'matrix-admin-key-0123456789',
          // The matrix sends ~1000 requests from one address, many with a wrong key: no limits here.
          XRAY_AUTH_MAX_FAILURES: '0',
          XRAY_RATE_LIMIT_PER_IP: '0',
          XRAY_RATE_LIMIT_PER_CALLER: '0',
        }),
      );
      for (const name of ['model-registry', 'data-pipeline', ...SERVICE_NAMES.filter((n) => n !== 'model-registry' && n !== 'data-pipeline')] as ServiceName[]) {
        const app = await SERVICE_BUILDERS[name](platform);
        await app.ready();
        apps.set(name, app);
        for (const r of seen.get(app) ?? []) {
          if (r.method === 'HEAD') continue; // the GET route's automatic twin
          routes.push({ service: name, method: r.method, url: r.url, access: r.config.role as RouteAccess | undefined, internal: r.config.internal === true });
        }
      }
    } finally {
      diagnostics.unsubscribe('fastify.initialization', onInit);
    }
    for (const role of ROLES) keys.set(role, (await platform.keys.create(`matrix-${role}`, role)).key);
  });

  after(async () => {
    for (const app of apps.values()) await app.close();
    await platform?.close();
    home.cleanup();
  });

  test('the route table is the whole platform: every service, well over a hundred routes, each declaring its access', (t) => {
    t.diagnostic(`${routes.length} routes (${routes.filter(isPublic).length} public, ${routes.filter((r) => r.internal).length} internal)`);
    for (const name of SERVICE_NAMES) assert.ok(routes.some((r) => r.service === name), `no routes seen for ${name}`);
    assert.ok(routes.length > 100, `only ${routes.length} routes found`);
    for (const r of routes) {
      if (isPublic(r)) continue;
      assert.ok(r.access && (ROLES as readonly string[]).includes(r.access), `${r.service} ${r.method} ${r.url} declares no role`);
    }
    const undeclaredPublic = routes.filter((r) => r.access === 'public' && !isPublic(r)).map((r) => `${r.service} ${r.method} ${r.url}`);
    assert.deepEqual(undeclaredPublic, [], 'routes declaring public access that are not on the public allow-list');
  });

  test('no key and a wrong key: 401 on every non-public route; public routes answer anyone', async () => {
    const problems: string[] = [];
    let checked = 0;
    for (const r of routes) {
      const app = apps.get(r.service)!;
      for (const [who, headers] of [
        ['no key', {}],
        ['wrong key', { authorization: 'Bearer xk_this-is-not-a-key-of-this-platform' }],
      ] as const) {
        const res = await app.inject({ method: r.method as 'GET', url: concrete(r.url), headers: { ...headers, [PROBE]: '1' } });
        checked++;
        const ok = isPublic(r) ? res.statusCode !== 401 && res.statusCode !== 403 : res.statusCode === 401 && codeOf(res) === 'UNAUTHENTICATED';
        if (!ok) problems.push(`${r.service} ${r.method} ${r.url} (${who}): ${res.statusCode} ${codeOf(res)}`);
      }
    }
    assert.deepEqual(problems, [], `${problems.length} of ${checked} answers wrong:\n${problems.join('\n')}`);
  });

  test('each role: 403 below the route’s declared role, through (not 401/403) at or above it; internal routes only for services', async () => {
    const problems: string[] = [];
    let allowed = 0;
    let forbidden = 0;
    for (const r of routes) {
      if (isPublic(r)) continue;
      const app = apps.get(r.service)!;
      for (const role of ROLES) {
        const res = await app.inject({ method: r.method as 'GET', url: concrete(r.url), headers: { authorization: `Bearer ${keys.get(role)}`, [PROBE]: '1' } });
        const mayCall = hasRole(role, r.access as Role) && !r.internal;
        if (mayCall) {
          allowed++;
          if (res.statusCode !== 299 || res.headers[PROBE] !== 'authorized') problems.push(`${r.service} ${r.method} ${r.url} as ${role}: ${res.statusCode} ${codeOf(res)}, expected to pass`);
        } else {
          forbidden++;
          if (res.statusCode !== 403 || codeOf(res) !== 'FORBIDDEN') problems.push(`${r.service} ${r.method} ${r.url} as ${role}: ${res.statusCode} ${codeOf(res)}, expected 403`);
        }
      }
      if (r.internal) {
        // Another platform service (a signed service token) passes an internal route.
        const res = await app.inject({ method: r.method as 'GET', url: concrete(r.url), headers: { ...(await platform.transport.identityHeaders(r.service)), [PROBE]: '1' } });
        if (res.statusCode !== 299) problems.push(`${r.service} ${r.method} ${r.url} as a service: ${res.statusCode}, expected to pass`);
      }
    }
    assert.deepEqual(problems, [], problems.join('\n'));
    assert.ok(allowed > 100 && forbidden > 100, `allowed ${allowed}, forbidden ${forbidden}`);
  });
});
