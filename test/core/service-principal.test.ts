/**
 * A call a service makes on its own behalf (no caller's key to forward) authenticates with its
 * service token: a principal `service:<name>` that may read, register and track, never administer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signServiceToken } from '../../src/core/auth/service-token.js';
import { buildModelRegistryApp } from '../../src/model-registry/app.js';
import { HttpModelRegistryClient } from '../../src/model-registry/client/index.js';
import { startService, type ServiceHarness } from '../helpers/service-harness.js';

const SECRET = 's'.repeat(40);

describe('service tokens as the caller of last resort (auth on)', () => {
  let h: ServiceHarness;
  before(async () => {
    h = await startService(buildModelRegistryApp, 'service-principal', { XRAY_AUTH: 'on', XRAY_SERVICE_TOKEN_SECRET: SECRET });
  });
  after(() => h.close());

  const asService = async (url: string, token: string, method: 'GET' | 'POST' = 'GET') =>
    h.app.inject({ method, url, headers: { 'x-service-token': token }, ...(method === 'POST' ? { payload: {} } : {}) });

  test('a valid token for this service reads; another audience, a forged or expired token does not; admin routes stay closed', async () => {
    const secret = Buffer.from(SECRET);
    const good = await signServiceToken(secret, { caller: 'deployment', audience: 'model-registry' });
    assert.equal((await asService('/models', good)).statusCode, 200);
    assert.equal((await h.app.inject({ method: 'GET', url: '/models' })).statusCode, 401, 'no key, no token');
    assert.equal((await asService('/models', await signServiceToken(secret, { caller: 'deployment', audience: 'monitoring' }))).statusCode, 401);
    assert.equal((await asService('/models', await signServiceToken(Buffer.from('f'.repeat(40)), { caller: 'deployment', audience: 'model-registry' }))).statusCode, 401);
    assert.equal((await asService('/models', await signServiceToken(secret, { caller: 'deployment', audience: 'model-registry' }, -120))).statusCode, 401);
    const gc = await asService('/artifacts/gc', good, 'POST');
    assert.equal(gc.statusCode, 403, gc.body);
  });

  test("the HTTP registry client of another process authenticates with the platform's transport", async () => {
    const url = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const client = new HttpModelRegistryClient(url, { transport: h.platform.transport });
    // Authenticated (not 401): the unknown model is a typed NOT_FOUND.
    await assert.rejects(client.getVersion('no-such-model', 'production'), (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
    const anonymous = new HttpModelRegistryClient(url);
    await assert.rejects(anonymous.getVersion('no-such-model', 'production'), (e: Error & { code?: string }) => e.code === 'UNAUTHENTICATED');
  });
});
