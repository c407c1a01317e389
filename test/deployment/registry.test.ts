import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { generateChestXray } from '../../src/core/imaging/index.js';
import { buildDeploymentApp } from '../../src/deployment/app.js';
import { testConfig } from '../../src/core/config/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { MODEL_REGISTRY_LOCAL_KEY } from '../../src/model-registry/client/types.js';
import { LocalModelRegistryClient } from '../../src/model-registry/service/local-client.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { NO_FEATURES_MODEL, TINY_MODEL, predictRaw, startDeployment, type Harness } from './helpers.js';

async function waitForVersion(app: FastifyInstance, version: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const models = (await app.inject({ method: 'GET', url: '/models' })).json().models as { name: string; version: string; default: boolean }[];
    if (models.some((m) => m.name === 'pneumonia' && m.version === version && m.default)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`pneumonia version ${version} was not loaded`);
}

describe('deployment: models from the registry', () => {
  let h: Harness;
  let registry: ModelRegistryService;
  const actor = { name: 'tester', role: 'admin' as const };
  before(async () => {
    h = await startDeployment();
    registry = new ModelRegistryService(h.platform);
  });
  after(() => h.close());

  test('loading by name reports a model missing from the registry as not found', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/models/load', payload: { name: 'pneumonia' } });
    assert.equal(res.statusCode, 404, res.body);
  });

  test("the production alias is followed: promotion loads the new version and hot-swaps it in", async () => {
    const v1 = await registry.register({ name: 'pneumonia', actor, source: { kind: 'upload', data: readFileSync(TINY_MODEL), filename: 'model.onnx' } });
    await registry.setStage({ name: 'pneumonia', version: v1.version, stage: 'Production', actor, force: true, reason: 'test' });
    await waitForVersion(h.app, String(v1.version));
    const image = await generateChestXray({ seed: 3, size: 64 });
    const p1 = (await predictRaw(h.app, image)).json();
    assert.equal(p1.model.version, String(v1.version));
    assert.equal(p1.heatmap_method, 'cam');

    const v2 = await registry.register({ name: 'pneumonia', actor, source: { kind: 'upload', data: readFileSync(NO_FEATURES_MODEL), filename: 'model.onnx' } });
    await registry.setStage({ name: 'pneumonia', version: v2.version, stage: 'Production', actor, force: true, reason: 'test' });
    await waitForVersion(h.app, String(v2.version));
    const p2 = (await predictRaw(h.app, image)).json();
    assert.equal(p2.model.version, String(v2.version));
    assert.equal(p2.heatmap_method, 'occlusion');
    const listed = (await h.app.inject({ method: 'GET', url: '/models' })).json().models;
    assert.equal(listed.length, 1, 'the replaced version is unloaded');
    assert.equal(listed[0].source.kind, 'registry');
    assert.equal(listed[0].alias, 'production');

    const byVersion = await h.app.inject({ method: 'POST', url: '/models/load', payload: { name: 'pneumonia', version: String(v1.version), default: false } });
    assert.equal(byVersion.statusCode, 200, byVersion.body);
    assert.equal(byVersion.json().default, false);
  });

  test('a new deployment app loads the production version at start', async () => {
    const second = await buildDeploymentApp(h.platform);
    try {
      const prod = await registry.resolve('pneumonia', 'production');
      await waitForVersion(second, String(prod.version));
    } finally {
      await second.close();
    }
  });
});

/** A fresh platform in a temporary home for `fn`, closed and removed after it. */
async function withPlatform(env: Record<string, string>, fn: (platform: Platform) => Promise<void>): Promise<void> {
  const home = mkdtempSync(path.join(tmpdir(), 'xray-registry-'));
  const platform = await openPlatform(testConfig(home, env));
  try {
    await fn(platform);
  } finally {
    await platform.close();
    rmSync(home, { recursive: true, force: true });
  }
}

/** Registers the tiny model as pneumonia and makes it Production (no deployment to canary it yet). */
async function registerProduction(registry: ModelRegistryService): Promise<string> {
  const actor = { name: 'tester', role: 'admin' as const };
  const v = await registry.register({ name: 'pneumonia', actor, source: { kind: 'upload', data: readFileSync(TINY_MODEL), filename: 'model.onnx' } });
  await registry.setStage({ name: 'pneumonia', version: v.version, stage: 'Production', actor, force: true, reason: 'test', skipCanary: 'no deployment yet' });
  return String(v.version);
}

/** Nothing listens on port 9: the registry client's HTTP calls are refused (SERVICE_UNAVAILABLE, unreachable). */
const UNREACHABLE_REGISTRY = { XRAY_SERVICE_URLS: 'model-registry=http://127.0.0.1:9' };

describe('deployment: a registry that is not up yet', () => {
  test('the production version loads once the registry answers (retried with backoff, not given up)', () =>
    withPlatform(UNREACHABLE_REGISTRY, async (platform) => {
      const registry = new ModelRegistryService(platform);
      const version = await registerProduction(registry);
      const app = await buildDeploymentApp(platform);
      try {
        await new Promise((r) => setTimeout(r, 800));
        assert.equal((await app.inject({ method: 'GET', url: '/models' })).json().models.length, 0, 'nothing loads while the registry is unreachable');
        // Ready once the first attempt finds the registry unreachable: a replica does not wait on it forever.
        for (let i = 0; !(await app.inject({ method: 'GET', url: '/ready' })).json().checks.models; i++) {
          assert.ok(i < 400, 'ready while the registry stays unreachable');
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal((await app.inject({ method: 'GET', url: '/models' })).json().models.length, 0);
        // The registry comes up (here: in this process, as embedded mode offers it).
        platform.local.provide(MODEL_REGISTRY_LOCAL_KEY, new LocalModelRegistryClient(registry));
        await waitForVersion(app, version);
      } finally {
        await app.close();
      }
    }));
});

describe('deployment: a replica stopped while its registry is unreachable', () => {
  test('records no failed load: nothing failed, it was stopped (no error log, audit failure or model_not_serving alert)', () =>
    withPlatform(UNREACHABLE_REGISTRY, async (platform) => {
      const app = await buildDeploymentApp(platform);
      await new Promise((r) => setTimeout(r, 700)); // the first attempt failed; it waits to retry
      await app.close();
      const { items } = await platform.audit.query({ action: 'model.load' });
      assert.deepEqual(items.filter((r) => r.outcome === 'failure'), []);
    }));
});

describe('deployment: a replica whose default model is still loading', () => {
  test('is not ready, and a request that arrives meanwhile waits for the load instead of failing', () =>
    withPlatform({}, async (platform) => {
      const registry = new ModelRegistryService(platform);
      const version = await registerProduction(registry);
      // The registry answers, but the model's bytes arrive only when the test opens the gate (a slow object store).
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      const local = new LocalModelRegistryClient(registry);
      const slow = new Proxy(local, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (prop !== 'artifact' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
          return async (...args: unknown[]) => {
            await gate;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      platform.local.provide(MODEL_REGISTRY_LOCAL_KEY, slow);
      const app = await buildDeploymentApp(platform);
      try {
        const notReady = await app.inject({ method: 'GET', url: '/ready' });
        assert.equal(notReady.statusCode, 503, notReady.body);
        assert.equal(notReady.json().checks.models, false);
        const pending = predictRaw(app, await generateChestXray({ size: 64, seed: 3 }));
        await new Promise((r) => setTimeout(r, 300));
        open();
        const res = await pending;
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().model.version, version);
        const ready = await app.inject({ method: 'GET', url: '/ready' });
        assert.equal(ready.statusCode, 200, ready.body);
        assert.equal(ready.json().checks.models, true);
      } finally {
        open();
        await app.close();
      }
    }));
});
