import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildDeploymentApp } from '../../src/deployment/app.js';
import { KyselyRoutingStore } from '../../src/deployment/store/routing-store.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { TINY_MODEL, startDeployment, type Harness } from './helpers.js';

// Cluster-wide model state (issue 16 item 1): two deployment apps on one database and event bus
// stand for two replicas. test/scaled/cluster.test.ts runs the same across processes and hosts.

interface Served {
  name: string;
  version: string;
  default: boolean;
}

async function served(app: FastifyInstance): Promise<Served[]> {
  return (await app.inject({ method: 'GET', url: '/models' })).json().models as Served[];
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`${what}: not within 10 s`);
}

describe('deployment: cluster-wide model state', () => {
  let h: Harness;
  let b: FastifyInstance;
  let registry: ModelRegistryService;
  const actor = { name: 'tester', role: 'admin' as const };
  let v1: number;
  let v2: number;

  before(async () => {
    h = await startDeployment();
    registry = new ModelRegistryService(h.platform);
    const onnx = readFileSync(TINY_MODEL);
    v1 = (await registry.register({ name: 'pneumonia', actor, source: { kind: 'upload', data: onnx, filename: 'model.onnx' } })).version;
    v2 = (await registry.register({ name: 'pneumonia', actor, source: { kind: 'upload', data: onnx, filename: 'model.onnx' } })).version;
    await registry.setStage({ name: 'pneumonia', version: v1, stage: 'Production', actor, force: true, reason: 'test' });
    b = await buildDeploymentApp(h.platform);
  });
  after(async () => {
    await b?.close();
    await h.close();
  });

  test('a load on one replica reaches the other, a replica started later, and every GET /models says who serves what', async () => {
    const defaultIs = (v: number) => async (app: FastifyInstance) => (await served(app)).some((m) => m.version === String(v) && m.default);
    await until('both replicas serve production', async () => (await defaultIs(v1)(h.app)) && (await defaultIs(v1)(b)));

    const load = await h.app.inject({ method: 'POST', url: '/models/load', payload: { name: 'pneumonia', version: String(v2), default: false } });
    assert.equal(load.statusCode, 200, load.body);
    await until('the other replica loads the pinned version', async () => (await served(b)).some((m) => m.version === String(v2) && !m.default));

    const c = await buildDeploymentApp(h.platform);
    try {
      await until('a replica started later converges on the desired loads', async () => (await served(c)).some((m) => m.version === String(v2)) && (await defaultIs(v1)(c)));
      await new Promise((r) => setTimeout(r, 600)); // past the route's 500 ms memo
      const view = (await b.inject({ method: 'GET', url: '/models' })).json().cluster;
      assert.equal(view.replicas.length, 3, JSON.stringify(view));
      assert.equal(view.replicas.filter((r: { self: boolean }) => r.self).length, 1);
      assert.deepEqual(
        view.desired.map((d: Served & { reason: string }) => [d.version, d.default, d.reason]).sort(),
        [[String(v1), true, 'production alias'], [String(v2), false, 'load']].sort(),
      );
      await until('every replica has converged', async () => (await b.inject({ method: 'GET', url: '/models' })).json().cluster.converged === true);
    } finally {
      await c.close();
    }
    // A stopped replica leaves the view; one that serves too little shows what it misses.
    const store = new KyselyRoutingStore(h.platform.database);
    await store.heartbeat({ id: 'ghost', host: 'elsewhere', serving: [{ name: 'pneumonia', version: String(v1), default: true, alias: 'production' }], problems: [], startedAt: Date.now(), heartbeatAt: Date.now() });
    await new Promise((r) => setTimeout(r, 600)); // past the route's 500 ms memo
    const withGhost = (await h.app.inject({ method: 'GET', url: '/models' })).json().cluster;
    assert.equal(withGhost.converged, false);
    assert.equal(withGhost.replicas.length, 3, 'two live replicas and the ghost (the stopped one removed its heartbeat)');
    const ghost = withGhost.replicas.find((r: { id: string }) => r.id === 'ghost');
    assert.deepEqual(ghost.missing.map((d: Served) => d.version), [String(v2)]);
    await store.removeReplica('ghost');
  });

  test('an unload on one replica unloads it on the others and from the desired state', async () => {
    const res = await b.inject({ method: 'POST', url: '/models/unload', payload: { name: 'pneumonia', version: String(v2) } });
    assert.equal(res.statusCode, 200, res.body);
    await until('the other replica unloads it', async () => !(await served(h.app)).some((m) => m.version === String(v2)));
    await new Promise((r) => setTimeout(r, 600));
    const view = (await h.app.inject({ method: 'GET', url: '/models' })).json().cluster;
    assert.deepEqual(view.desired.map((d: Served) => d.version), [String(v1)]);
    assert.equal(view.converged, true);
  });

  test('a promotion moves every replica; the desired state follows the alias', async () => {
    await registry.setStage({ name: 'pneumonia', version: v2, stage: 'Production', actor, force: true, reason: 'test' });
    for (const app of [h.app, b]) await until('serves the promoted version', async () => (await served(app)).some((m) => m.version === String(v2) && m.default));
    await new Promise((r) => setTimeout(r, 600));
    const view = (await b.inject({ method: 'GET', url: '/models' })).json().cluster;
    assert.deepEqual(view.desired.map((d: Served) => [d.version, d.default]), [[String(v2), true]]);
    await until('converged', async () => (await b.inject({ method: 'GET', url: '/models' })).json().cluster.converged === true);
  });
});
