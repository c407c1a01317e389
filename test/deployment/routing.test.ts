import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateChestXray } from '../../src/core/imaging/index.js';
import { KyselyPredictionStore } from '../../src/deployment/store/prediction-store.js';
import { loadModel, predictRaw, startDeployment, type Harness } from './helpers.js';

describe('deployment: A/B split and shadow routing', () => {
  let h: Harness;
  let image: Buffer;
  before(async () => {
    h = await startDeployment();
    image = await generateChestXray({ seed: 77, size: 64 });
    await loadModel(h.app, { version: 'va' });
    await loadModel(h.app, { version: 'vb', default: false });
  });
  after(() => h.close());

  test('routing needs loaded, distinct versions', async () => {
    const missing = await h.app.inject({ method: 'POST', url: '/routing', payload: { model: 'pneumonia', variants: [{ version: 'va' }, { version: 'zz' }] } });
    assert.equal(missing.statusCode, 404, missing.body);
    assert.equal(missing.json().error.code, 'MODEL_NOT_FOUND');
    const dup = await h.app.inject({ method: 'POST', url: '/routing', payload: { model: 'pneumonia', variants: [{ version: 'va' }, { version: 'va' }] } });
    assert.equal(dup.statusCode, 400);
  });

  test('a 70/30 split sends roughly those shares, sticky per x-client-key', async () => {
    const set = await h.app.inject({
      method: 'POST',
      url: '/routing',
      payload: { model: 'pneumonia', mode: 'split', sticky: true, variants: [{ version: 'va', weight: 70 }, { version: 'vb', weight: 30 }] },
    });
    assert.equal(set.statusCode, 200, set.body);
    assert.deepEqual(
      set.json().variants.map((v: { name: string }) => v.name),
      ['A', 'B'],
    );
    const counts: Record<string, number> = {};
    const n = 200;
    for (let i = 0; i < n; i++) {
      const res = await predictRaw(h.app, image, 'image/png', '', { 'x-client-key': `client-${i}` });
      assert.equal(res.statusCode, 200);
      const p = res.json();
      counts[p.variant] = (counts[p.variant] ?? 0) + 1;
      assert.equal(p.model.version, p.variant === 'A' ? 'va' : 'vb');
    }
    const shareA = (counts.A ?? 0) / n;
    assert.ok(shareA > 0.55 && shareA < 0.85, `share of A ${shareA}`);
    for (const key of ['client-3', 'client-42', 'someone']) {
      const seen = new Set<string>();
      for (let k = 0; k < 8; k++) seen.add((await predictRaw(h.app, image, 'image/png', '', { 'x-client-key': key })).json().variant);
      assert.equal(seen.size, 1, `${key} always gets the same variant`);
    }
    const pinned = (await predictRaw(h.app, image, 'image/png', '?version=vb')).json();
    assert.equal(pinned.variant, 'pinned');
    const metrics = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, /xray_deployment_predictions_total\{[^}]*variant="B"/);
  });

  test('a version used by routing cannot be unloaded', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/models/unload', payload: { name: 'pneumonia', version: 'vb' } });
    assert.equal(res.statusCode, 409);
  });

  test('shadow mode answers from A and only logs B', async () => {
    const set = await h.app.inject({ method: 'POST', url: '/routing', payload: { model: 'pneumonia', mode: 'shadow', variants: [{ version: 'va' }, { version: 'vb' }] } });
    assert.equal(set.statusCode, 200, set.body);
    const img = await generateChestXray({ seed: 78, size: 64 });
    const res = await predictRaw(h.app, img, 'image/png', '', { 'x-client-key': 'whoever' });
    assert.equal(res.statusCode, 200);
    const p = res.json();
    assert.equal(p.variant, 'A');
    assert.equal(p.model.version, 'va');
    const store = new KyselyPredictionStore(h.platform.database);
    let shadow: Awaited<ReturnType<typeof store.list>>['items'] = [];
    for (let i = 0; i < 100 && shadow.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const served = await store.get(p.prediction_id);
      if (!served) continue;
      shadow = (await store.list({ shadow: true, limit: 1000 })).items.filter((r) => r.imageSha256 === served.imageSha256);
    }
    assert.equal(shadow.length, 1);
    assert.equal(shadow[0]!.modelVersion, 'vb');
    assert.equal(shadow[0]!.variant, 'B');
    assert.equal(shadow[0]!.probability, p.probability, 'same file, same output');
    const served = await store.list({ shadow: false, version: 'vb', since: shadow[0]!.time - 1 });
    assert.equal(served.items.length, 0, 'B served nothing');
    const removed = await h.app.inject({ method: 'DELETE', url: '/routing/pneumonia' });
    assert.equal(removed.json().deleted, true);
    const plain = (await predictRaw(h.app, img)).json();
    assert.equal(plain.variant, 'default');
  });
});
