import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { testConfig } from '../../src/core/config/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { createServiceApp, type ServicePluginOptions } from '../../src/core/http/index.js';
import { AppError } from '../../src/core/errors.js';
import { tempHome } from '../helpers/engines.js';

const demo: FastifyPluginAsync<ServicePluginOptions> = async (app) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post('/things', { config: { role: 'ml-engineer' }, schema: { body: z.object({ name: z.string().min(1), n: z.number().int() }) } }, async (req) => ({ ok: true, name: req.body.name }));
  r.get('/things/:id', { config: { role: 'viewer' }, schema: { params: z.object({ id: z.string() }) } }, async (req) => {
    throw new AppError('NOT_FOUND', `thing '${req.params.id}' does not exist`);
  });
  r.get('/boom', { config: { role: 'viewer' } }, async () => {
    throw new Error('secret internal detail');
  });
  // What node-postgres throws when the server is down, and when it is shut down mid-session.
  r.get('/engine-down/:kind', { config: { role: 'viewer' }, schema: { params: z.object({ kind: z.enum(['refused', 'shutdown']) }) } }, async (req) => {
    if (req.params.kind === 'refused') throw new AggregateError([Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' })], 'connect failed');
    throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01', severity: 'FATAL' });
  });
};

async function build(auth: boolean): Promise<{ app: FastifyInstance; platform: Platform; cleanup(): Promise<void> }> {
  const home = tempHome();
  const platform = await openPlatform(testConfig(home.dir, auth ? { XRAY_AUTH: 'on', XRAY_ADMIN_KEY: 'admin-secret-key' } : {}));
  const app = await createServiceApp({ name: 'demo', title: 'demo', description: 'demo', platform, plugin: demo });
  return { app, platform, cleanup: async () => (await app.close(), await platform.close(), home.cleanup()) };
}

describe('service app: envelope, docs, health', () => {
  let ctx: Awaited<ReturnType<typeof build>>;
  before(async () => (ctx = await build(false)));
  after(() => ctx.cleanup());

  test('health, readiness and metrics answer', async () => {
    assert.equal((await ctx.app.inject('/health')).json().status, 'ok');
    const ready = await ctx.app.inject('/ready');
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json().checks, { accepting: true, database: true, objects: true, cache: true, queue: true });
    const metrics = await ctx.app.inject('/metrics');
    assert.match(metrics.body, /xray_process_cpu_user_seconds_total/);
    assert.match(metrics.body, /xray_http_request_duration_seconds_bucket/);
  });

  test('OpenAPI is generated from the route schemas', async () => {
    const doc = (await ctx.app.inject('/docs/json')).json();
    assert.equal(doc.openapi, '3.0.3');
    assert.ok(doc.paths['/things'].post.requestBody);
    assert.equal((await ctx.app.inject('/docs')).statusCode < 400, true);
  });

  test('unknown route, malformed JSON, schema violation, coded error, 5xx each get the envelope', async () => {
    const unknown = await ctx.app.inject('/nope');
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().error.code, 'ROUTE_NOT_FOUND');

    const malformed = await ctx.app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '{"name": ' });
    assert.equal(malformed.statusCode, 400);
    assert.equal(malformed.json().error.code, 'INVALID_INPUT');
    assert.match(malformed.json().error.message, /malformed JSON/);

    const invalid = await ctx.app.inject({ method: 'POST', url: '/things', payload: { name: '', n: 1.5 } });
    assert.equal(invalid.statusCode, 400);
    assert.equal(invalid.json().error.code, 'INVALID_INPUT');

    const missing = await ctx.app.inject('/things/42');
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(missing.json(), { error: { code: 'NOT_FOUND', message: "thing '42' does not exist" } });

    const boom = await ctx.app.inject('/boom');
    assert.equal(boom.statusCode, 500);
    assert.equal(boom.json().error.code, 'INTERNAL');
    assert.doesNotMatch(boom.body, /secret internal detail/);

    // An engine that is down is not a bug: 503 with Retry-After, no detail of the address.
    for (const kind of ['refused', 'shutdown']) {
      const down = await ctx.app.inject(`/engine-down/${kind}`);
      assert.equal(down.statusCode, 503, kind);
      assert.equal(down.json().error.code, 'SERVICE_UNAVAILABLE');
      assert.equal(down.headers['retry-after'], '5');
      assert.doesNotMatch(down.body, /10\.0\.0\.5/);
    }

    const wrongType = await ctx.app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'text/xml' }, payload: '<x/>' });
    assert.equal(wrongType.statusCode, 415);
    assert.equal(wrongType.json().error.code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('request ids are returned and honoured', async () => {
    const res = await ctx.app.inject({ url: '/health', headers: { 'x-request-id': 'abc-123' } });
    assert.equal(res.headers['x-request-id'], 'abc-123');
  });

  test('a route without a declared role fails the boot', async () => {
    const home = tempHome();
    const platform = await openPlatform(testConfig(home.dir));
    const bad: FastifyPluginAsync<ServicePluginOptions> = async (app) => {
      app.get('/unguarded', async () => 'x');
    };
    await assert.rejects(createServiceApp({ name: 'bad', title: 'b', description: 'b', platform, plugin: bad }), /declares no role/);
    await platform.close();
    home.cleanup();
  });
});

describe('service app with auth on', () => {
  let ctx: Awaited<ReturnType<typeof build>>;
  before(async () => (ctx = await build(true)));
  after(() => ctx.cleanup());

  test('no key → 401, wrong role → 403, right role → 200; public routes stay open', async () => {
    assert.equal((await ctx.app.inject('/health')).statusCode, 200);
    const none = await ctx.app.inject({ method: 'POST', url: '/things', payload: { name: 'a', n: 1 } });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error.code, 'UNAUTHENTICATED');
    const { key: viewerKey } = await ctx.platform.keys.create('v', 'viewer');
    const viewer = await ctx.app.inject({ method: 'POST', url: '/things', headers: { 'x-api-key': viewerKey }, payload: { name: 'a', n: 1 } });
    assert.equal(viewer.statusCode, 403);
    assert.equal(viewer.json().error.code, 'FORBIDDEN');
    const admin = await ctx.app.inject({ method: 'POST', url: '/things', headers: { authorization: 'Bearer admin-secret-key' }, payload: { name: 'a', n: 1 } });
    assert.equal(admin.statusCode, 200);
  });

  test('denials land in the audit trail', async () => {
    const { items } = await ctx.platform.audit.query({ action: 'access.denied' });
    assert.ok(items.length >= 2);
    assert.ok(items.some((i) => i.details?.reason === 'FORBIDDEN' && i.actor === 'v'));
  });
});

describe('brute force: wrong API keys lock the address out; denials cannot flood the audit trail', () => {
  let ctx: Awaited<ReturnType<typeof build>>;
  before(async () => (ctx = await build(true)));
  after(() => ctx.cleanup());

  test('200 wrong keys: 401 until the limit, then 429 with Retry-After — even for the right key — and a few audit rows', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) {
      const res = await ctx.app.inject({ method: 'POST', url: '/things', headers: { authorization: `Bearer guess-${i}` }, payload: { name: 'a', n: 1 } });
      statuses.push(res.statusCode);
      if (res.statusCode === 429) {
        assert.equal(res.headers['retry-after'], '300');
        assert.equal(res.json().error.code, 'RATE_LIMITED');
      }
    }
    assert.deepEqual(statuses.slice(0, 9), Array(9).fill(401), 'the first nine wrong keys are plain 401s');
    assert.ok(statuses.slice(9).every((s) => s === 429), `locked out from the 10th wrong key on: ${statuses.slice(9, 20).join(',')}`);
    const right = await ctx.app.inject({ method: 'POST', url: '/things', headers: { authorization: 'Bearer admin-secret-key' }, payload: { name: 'a', n: 1 } });
    assert.equal(right.statusCode, 429, 'the address stays locked for the lockout period');
    const other = await ctx.app.inject({ method: 'POST', url: '/things', remoteAddress: '10.1.2.3', headers: { authorization: 'Bearer admin-secret-key' }, payload: { name: 'a', n: 1 } });
    assert.equal(other.statusCode, 200, 'another address is not affected');

    const denied = (await ctx.platform.audit.query({ action: 'access.denied', pageSize: 1000 })).items;
    assert.ok(denied.length <= 3, `denials are aggregated (${denied.length} rows for 9 denials)`);
    assert.ok(denied.some((r) => r.details?.count_in_window === 1));
    const lockouts = (await ctx.platform.audit.query({ action: 'access.lockout' })).items;
    assert.equal(lockouts.length, 1, 'one lockout record');
    assert.equal(lockouts[0]!.resource, 'ip:127.0.0.1');
  });

  test('requests without a key are not counted as guesses, and their denials are aggregated per window', async () => {
    for (let i = 0; i < 30; i++) {
      const res = await ctx.app.inject({ method: 'POST', url: '/things', remoteAddress: '10.9.9.9', payload: { name: 'a', n: 1 } });
      assert.equal(res.statusCode, 401);
    }
    const rows = (await ctx.platform.audit.query({ action: 'access.denied', pageSize: 1000 })).items.filter((r) => r.details?.ip === '10.9.9.9');
    assert.deepEqual(rows.map((r) => r.details?.count_in_window).sort((a, b) => Number(a) - Number(b)), [1, 10], '30 denials, two rows (the 1st and the 10th)');
  });
});
