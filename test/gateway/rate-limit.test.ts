import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { testConfig, type Config } from '../../src/core/config/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { createServiceApp, type ServicePluginOptions } from '../../src/core/http/index.js';
import { buildGatewayApp } from '../../src/gateway/app.js';
import { tempHome } from '../helpers/engines.js';

const demo: FastifyPluginAsync<ServicePluginOptions> = async (app) => {
  app.get('/things', { config: { role: 'viewer' } }, async (req) => ({ ip: req.ip }));
};

describe('gateway: per-address rate limit, and the client address passed on to the services', () => {
  const home = tempHome();
  let platform: Platform;
  let service: FastifyInstance;
  let gateway: FastifyInstance;
  let config: Config;

  before(async () => {
    // The service counts 2 requests per address, the gateway 6: each refusal shows who counted.
    config = testConfig(home.dir, { XRAY_RATE_LIMIT_PER_IP: '2', XRAY_RATE_LIMIT_WINDOW_S: '60' });
    platform = await openPlatform(config);
    service = await createServiceApp({ name: 'model-registry', title: 'demo', description: 'demo', platform, plugin: demo });
    const url = await service.listen({ host: '127.0.0.1', port: 0 });
    gateway = await buildGatewayApp({ ...config, rateLimit: { ...config.rateLimit, perIp: 6 }, serviceUrls: { ...config.serviceUrls, 'model-registry': url } }, platform.logger, { audit: platform.audit, cache: platform.cache });
  });
  after(async () => {
    await gateway?.close();
    await service?.close();
    await platform?.close();
    home.cleanup();
  });

  test('the service sees and counts the client behind the gateway, not the gateway', async () => {
    const via = (ip: string) => gateway.inject({ url: '/api/model-registry/things', remoteAddress: ip });
    const first = await via('10.5.0.1');
    assert.equal(first.statusCode, 200);
    assert.equal(first.json().ip, '10.5.0.1');
    assert.equal((await via('10.5.0.1')).statusCode, 200);
    const third = await via('10.5.0.1');
    assert.equal(third.statusCode, 429, third.body);
    assert.equal(third.json().error.code, 'RATE_LIMITED');
    assert.ok(Number(third.headers['retry-after']) >= 1);
    assert.equal((await via('10.5.0.2')).statusCode, 200, 'another client behind the same gateway');
  });

  test("the gateway's own limit: 429 with Retry-After past it; its /health stays open", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await gateway.inject({ url: '/auth/config', remoteAddress: '10.6.0.1' })).statusCode);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 429, 429]);
    const refused = await gateway.inject({ url: '/auth/config', remoteAddress: '10.6.0.1' });
    assert.equal(refused.json().error.code, 'RATE_LIMITED');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal((await gateway.inject({ url: '/health', remoteAddress: '10.6.0.1' })).statusCode, 200);
    await platform.audit.flush();
    const rows = (await platform.audit.query({ action: 'access.rate_limited', pageSize: 100 })).items.filter((r) => r.service === 'gateway');
    assert.deepEqual(rows.map((r) => [r.resource, r.details?.count_in_window]), [['ip:10.6.0.1', 1]], 'three refusals, one audit row');
  });
});
