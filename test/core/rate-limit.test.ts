import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyPluginAsync, LightMyRequestResponse } from 'fastify';
import { testConfig } from '../../src/core/config/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { createServiceApp, type ServicePluginOptions } from '../../src/core/http/index.js';
import { engineGate, redisReachable, REDIS_URL, tempHome, uniqueName } from '../helpers/engines.js';

const demo: FastifyPluginAsync<ServicePluginOptions> = async (app) => {
  app.get('/things', { config: { role: 'viewer' } }, async () => ({ ok: true }));
};

interface Replica {
  app: FastifyInstance;
  platform: Platform;
  close(): Promise<void>;
}

/** One service app on its own embedded platform; `redis` puts its cache (and so its counters) in that namespace. */
async function replica(env: Record<string, string>, redis: { namespace: string } | null): Promise<Replica> {
  const home = tempHome();
  const platform = await openPlatform(testConfig(home.dir, { ...env, ...(redis ? { XRAY_CACHE_URL: REDIS_URL, XRAY_REDIS_NAMESPACE: redis.namespace } : {}) }));
  const app = await createServiceApp({ name: 'demo', title: 'demo', description: 'demo', platform, plugin: demo });
  return {
    app,
    platform,
    async close() {
      await app.close();
      const client = platform.cache.redis;
      if (redis && client && client.status === 'ready') {
        const keys = await client.keys(`${redis.namespace}:*`);
        if (keys.length) await client.del(...keys);
      }
      await platform.close();
      home.cleanup();
    },
  };
}

function assertLimited(res: LightMyRequestResponse, what: string): number {
  assert.equal(res.statusCode, 429, `${what}: ${res.statusCode} ${res.body}`);
  assert.equal(res.json().error.code, 'RATE_LIMITED');
  assert.match(res.json().error.message, /too many/);
  const retryAfter = Number(res.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After is a whole number of seconds: ${res.headers['retry-after']}`);
  return retryAfter;
}

const ENGINES = [
  { name: 'memory (embedded)', redis: false },
  { name: 'Redis (scaled)', redis: true },
] as const;

for (const engine of ENGINES) {
  describe(`rate limits, ${engine.name}`, () => {
    let run = true;
    const namespace = () => (engine.redis ? { namespace: uniqueName('xray-test-rl') } : null);
    before(async () => {
      if (engine.redis) run = await engineGate('Redis', await redisReachable());
    });

    test('per address: past the limit 429 + Retry-After in the error envelope; probes and scrapes stay open; another address is not affected; the window ends', async (t) => {
      if (!run) return t.skip('Redis not reachable');
      const r = await replica({ XRAY_RATE_LIMIT_PER_IP: '5', XRAY_RATE_LIMIT_WINDOW_S: '2' }, namespace());
      try {
        for (let i = 0; i < 5; i++) assert.equal((await r.app.inject('/things')).statusCode, 200, `request ${i + 1} of 5`);
        const retryAfter = assertLimited(await r.app.inject('/things'), 'the 6th request');
        assert.ok(retryAfter <= 2, `Retry-After within the window: ${retryAfter}`);
        assert.equal((await r.app.inject('/nowhere')).statusCode, 429, 'unknown routes count too (no free route scanning)');
        for (const url of ['/health', '/ready', '/metrics']) assert.equal((await r.app.inject(url)).statusCode, 200, `${url} is never limited`);
        assert.equal((await r.app.inject({ url: '/things', remoteAddress: '10.7.7.7' })).statusCode, 200, 'another address has its own count');
        await sleep(retryAfter * 1000 + 200);
        assert.equal((await r.app.inject('/things')).statusCode, 200, 'a new window after Retry-After');
      } finally {
        await r.close();
      }
    });

    test('per caller: each key has its own count, wherever it calls from; refusals are audited once per 1, 10, 100 … with the count', async (t) => {
      if (!run) return t.skip('Redis not reachable');
      const r = await replica({ XRAY_AUTH: 'on', XRAY_ADMIN_KEY: 'admin-secret-key', XRAY_RATE_LIMIT_PER_CALLER: '3', XRAY_RATE_LIMIT_PER_IP: '0', XRAY_RATE_LIMIT_WINDOW_S: '60' }, namespace());
      try {
        const { key: busy } = await r.platform.keys.create('busy-client', 'viewer');
        const { key: other } = await r.platform.keys.create('other-client', 'viewer');
        const as = (key: string, ip = '10.0.0.1') => r.app.inject({ url: '/things', remoteAddress: ip, headers: { authorization: `Bearer ${key}` } });
        for (let i = 0; i < 3; i++) assert.equal((await as(busy)).statusCode, 200);
        assertLimited(await as(busy), 'the 4th request of one key');
        assertLimited(await as(busy, '10.0.0.2'), 'the same key from another address');
        assert.equal((await as(other)).statusCode, 200, 'another key from the same address');
        assert.equal((await r.app.inject('/health')).statusCode, 200);
        for (let i = 0; i < 28; i++) assert.equal((await as(busy)).statusCode, 429);
        await r.platform.audit.flush();
        const rows = (await r.platform.audit.query({ action: 'access.rate_limited', pageSize: 100 })).items;
        assert.deepEqual(rows.map((row) => row.details?.count_in_window).sort((a, b) => Number(a) - Number(b)), [1, 10], '30 refusals, two audit rows');
        assert.ok(rows.every((row) => row.actor === 'busy-client' && row.resource.startsWith('caller:') && row.outcome === 'denied'));
        assert.ok(!JSON.stringify(rows).includes(busy), 'no key in the audit trail');
      } finally {
        await r.close();
      }
    });

    test('wrong keys: strict per-address and per-key-prefix lockout with Retry-After that ends; one lockout row per window', async (t) => {
      if (!run) return t.skip('Redis not reachable');
      const r = await replica({ XRAY_AUTH: 'on', XRAY_ADMIN_KEY: 'admin-secret-key', XRAY_AUTH_MAX_FAILURES: '3', XRAY_AUTH_FAILURE_WINDOW_S: '30', XRAY_AUTH_LOCKOUT_S: '1' }, namespace());
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 20; i++) statuses.push((await r.app.inject({ url: '/things', remoteAddress: '10.1.1.1', headers: { authorization: `Bearer guess-${i}` } })).statusCode);
        assert.deepEqual(statuses.slice(0, 2), [401, 401]);
        assert.ok(statuses.slice(2).every((s) => s === 429), statuses.join(','));
        const locked = await r.app.inject({ url: '/things', remoteAddress: '10.1.1.1', headers: { authorization: 'Bearer admin-secret-key' } });
        assert.equal(assertLimited(locked, 'the right key from a locked address') <= 1, true);
        assert.equal(locked.json().error.message.includes('wrong API keys'), true);
        await sleep(1300);
        // The failure count of the window is still at the limit: the next wrong key locks again, the right key passes.
        assert.equal((await r.app.inject({ url: '/things', remoteAddress: '10.1.1.1', headers: { authorization: 'Bearer admin-secret-key' } })).statusCode, 200, 'the lockout ended');

        // One key prefix guessed from many addresses: the prefix is locked wherever it comes from.
        for (let i = 0; i < 3; i++) await r.app.inject({ url: '/things', remoteAddress: `10.2.0.${i}`, headers: { authorization: `Bearer xk_AAAAAwrong${i}` } });
        assertLimited(await r.app.inject({ url: '/things', remoteAddress: '10.2.9.9', headers: { authorization: 'Bearer xk_AAAAAanother' } }), 'a locked key prefix from a fresh address');

        await r.platform.audit.flush();
        const lockouts = (await r.platform.audit.query({ action: 'access.lockout', pageSize: 100 })).items;
        assert.equal(lockouts.filter((l) => l.resource === 'ip:10.1.1.1').length, 1, 'one lockout row for 18 refused tries');
        const denied = (await r.platform.audit.query({ action: 'access.denied', pageSize: 100 })).items.filter((d) => d.details?.ip === '10.1.1.1');
        assert.deepEqual(denied.map((d) => d.details?.count_in_window), [1], 'two 401s: one aggregated denial row');
      } finally {
        await r.close();
      }
    });

    test('behind a trusted proxy the client in X-Forwarded-For is counted, not the proxy', async (t) => {
      if (!run) return t.skip('Redis not reachable');
      const r = await replica({ XRAY_RATE_LIMIT_PER_IP: '2', XRAY_RATE_LIMIT_WINDOW_S: '60' }, namespace());
      try {
        const via = (client: string, proxy = '127.0.0.1') => r.app.inject({ url: '/things', remoteAddress: proxy, headers: { 'x-forwarded-for': client } });
        assert.equal((await via('10.3.0.1')).statusCode, 200);
        assert.equal((await via('10.3.0.1')).statusCode, 200);
        assertLimited(await via('10.3.0.1'), 'a third request of one client behind the gateway');
        assert.equal((await via('10.3.0.2')).statusCode, 200, 'another client behind the same gateway');
        // An untrusted address cannot pick who it is counted as.
        assert.equal((await via('10.3.0.50', '10.9.0.1')).statusCode, 200);
        assert.equal((await via('10.3.0.51', '10.9.0.1')).statusCode, 200);
        assertLimited(await via('10.3.0.52', '10.9.0.1'), 'a spoofed X-Forwarded-For from an untrusted address');
      } finally {
        await r.close();
      }
    });
  });
}

describe('rate limits and lockouts, Redis away', () => {
  test('with the Redis connection gone, keys still work and wrong keys are 401 — no 500, nobody refused for want of a counter', async (t) => {
    if (!(await engineGate('Redis', await redisReachable()))) return t.skip('Redis not reachable');
    const namespace = uniqueName('xray-test-rl-down');
    const r = await replica({ XRAY_AUTH: 'on', XRAY_ADMIN_KEY: 'admin-secret-key', XRAY_RATE_LIMIT_PER_IP: '100', XRAY_RATE_LIMIT_PER_CALLER: '100', XRAY_AUTH_MAX_FAILURES: '3' }, { namespace });
    try {
      assert.equal((await r.app.inject({ url: '/things', headers: { authorization: 'Bearer admin-secret-key' } })).statusCode, 200);
      r.platform.cache.redis!.disconnect();
      for (let i = 0; i < 5; i++) {
        const wrong = await r.app.inject({ url: '/things', headers: { authorization: `Bearer guess-${i}` } });
        assert.equal(wrong.statusCode, 401, wrong.body);
      }
      assert.equal((await r.app.inject({ url: '/things', headers: { authorization: 'Bearer admin-secret-key' } })).statusCode, 200);
    } finally {
      await r.close().catch(() => {});
    }
  });
});

describe('rate limits, Redis: replicas of a service share the counts', () => {
  const replicas: Replica[] = [];
  let run = true;
  before(async () => {
    run = await engineGate('Redis', await redisReachable());
    if (!run) return;
    const namespace = uniqueName('xray-test-rl-shared');
    const env = { XRAY_RATE_LIMIT_PER_IP: '6', XRAY_RATE_LIMIT_WINDOW_S: '60' };
    replicas.push(await replica(env, { namespace }), await replica(env, { namespace }));
  });
  after(async () => {
    for (const r of replicas) await r.close();
  });

  test('six requests spread over two replicas use up one limit', async (t) => {
    if (!run) return t.skip('Redis not reachable');
    for (let i = 0; i < 6; i++) assert.equal((await replicas[i % 2]!.app.inject({ url: '/things', remoteAddress: '10.4.0.1' })).statusCode, 200);
    assertLimited(await replicas[0]!.app.inject({ url: '/things', remoteAddress: '10.4.0.1' }), 'replica A after six in all');
    assertLimited(await replicas[1]!.app.inject({ url: '/things', remoteAddress: '10.4.0.1' }), 'replica B after six in all');
  });
});
