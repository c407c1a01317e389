/**
 * POST /explain: the deployment data plane's heatmap plus an occlusion-sensitivity second opinion,
 * computed by the deployment (its own POST /explain) and reached from monitoring's route through the
 * deployment client (in-process here; over HTTP in test/e2e/split-services.test.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { generateChestXray } from '../../src/core/imaging/synthetic.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { KyselyPredictionStore } from '../../src/deployment/store/prediction-store.js';
import type { FastifyInstance } from 'fastify';
import { buildDeploymentApp } from '../../src/deployment/app.js';
import { insertPredictions, predictionRecords, startMonitoring, type Harness } from './helpers.js';

const TINY_MODEL = path.resolve(import.meta.dirname, '../fixtures/tiny-model.onnx');

describe('POST /explain', () => {
  let h: Harness;
  let deployment: FastifyInstance;
  let image: Buffer;
  let fromUpload: Record<string, any>;

  before(async () => {
    h = await startMonitoring();
    const registry = new ModelRegistryService(h.platform);
    const actor = { name: 'tester', role: 'admin' as const };
    const v = await registry.register({ name: 'pneumonia', actor, source: { kind: 'upload', data: readFileSync(TINY_MODEL), filename: 'model.onnx' } });
    await registry.setStage({ name: 'pneumonia', version: v.version, stage: 'Production', actor, force: true, reason: 'test' });
    image = await generateChestXray({ seed: 3, size: 64 });
    deployment = await buildDeploymentApp(h.platform);
  });

  after(async () => {
    await deployment.close();
    await h.close();
  });

  test('an uploaded image: CAM and occlusion maps as PNG overlays and raw grids, not logged as a prediction', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/explain?patch=4', headers: { 'content-type': 'image/png' }, payload: image });
    assert.equal(res.statusCode, 200, res.body);
    fromUpload = res.json();
    const e = fromUpload;
    assert.equal(e.prediction_id, null);
    assert.deepEqual(e.model, { name: 'pneumonia', version: '1' });
    assert.ok(e.probability >= 0 && e.probability <= 1);
    assert.equal(e.heatmap.method, 'cam');
    assert.equal(e.heatmap.grid.length, e.heatmap.h * e.heatmap.w);
    // The map's shape normalised, then scaled by the probability: its peak is the probability.
    assert.ok(e.heatmap.grid.every((v: number) => v >= 0 && v <= 1));
    assert.ok(Math.abs(Math.max(...e.heatmap.grid) - e.probability) < 1e-3, `peak ${Math.max(...e.heatmap.grid)} vs p ${e.probability}`);
    assert.ok(['high', 'moderate', 'low', 'undefined'].includes(e.agreement.level));
    assert.ok(e.agreement.spearman === null || (e.agreement.spearman >= -1 && e.agreement.spearman <= 1));
    assert.equal(e.occlusion.method, 'occlusion');
    assert.equal(e.occlusion.patch, 4);
    assert.equal(e.occlusion.grid.length, e.occlusion.h * e.occlusion.w);
    assert.ok(Math.abs(e.occlusion.baseline - e.probability) < 1e-4, 'occlusion baseline is the same model on the same pixels');
    for (const map of [e.heatmap, e.occlusion]) {
      const meta = await sharp(Buffer.from(map.png_base64, 'base64')).metadata();
      assert.equal(meta.format, 'png');
      assert.ok(meta.width! >= 16 && meta.width === meta.height);
    }
    assert.equal((await new KyselyPredictionStore(h.platform.database).list({ model: 'pneumonia' })).items.length, 0);
    await h.platform.audit.flush();
    const audit = await h.platform.audit.query({ action: 'explain.create' });
    assert.equal(audit.items[0]!.resource, `image:${e.image_sha256}`);
    assert.equal(audit.items[0]!.service, 'deployment', 'computed by the deployment data plane');
  });

  test("the deployment's own POST /explain gives the same explanation, on the served model's session", async () => {
    const res = await deployment.inject({ method: 'POST', url: '/explain?patch=4', headers: { 'content-type': 'image/png' }, payload: image });
    assert.equal(res.statusCode, 200, res.body);
    const e = res.json();
    assert.deepEqual(e.heatmap.grid, fromUpload.heatmap.grid);
    assert.deepEqual(e.occlusion.grid, fromUpload.occlusion.grid);
    assert.equal(e.probability, fromUpload.probability);
  });

  test('explaining an image /predict has just answered waits for its heatmap save (a cache hit saves nothing)', async () => {
    const fresh = await generateChestXray({ seed: 11, size: 64 });
    const objects = h.platform.objects;
    const put = objects.put.bind(objects);
    // A slow object store: the heatmap save of /predict is still in flight when /explain asks for it.
    objects.put = (async (key: string, ...rest: unknown[]) => {
      if (key.includes('heatmap')) await new Promise((r) => setTimeout(r, 400));
      return (put as (...a: unknown[]) => Promise<unknown>)(key, ...rest);
    }) as typeof objects.put;
    try {
      const p = await deployment.inject({ method: 'POST', url: '/predict', headers: { 'content-type': 'image/png' }, payload: fresh });
      assert.equal(p.statusCode, 200, p.body);
      const res = await deployment.inject({ method: 'POST', url: '/explain?patch=4', headers: { 'content-type': 'image/png' }, payload: fresh });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().probability, p.json().probability);
    } finally {
      objects.put = put;
    }
  });

  test('a logged prediction by id: the same maps from the stored heatmap source', async () => {
    const [record] = predictionRecords({ idPrefix: 'exp', start: Date.now(), stats: [], embeddings: [], probabilities: [fromUpload.probability] });
    await insertPredictions(h.platform, [{ ...record!, imageSha256: fromUpload.image_sha256, heatmapMethod: 'cam' }]);
    const res = await h.app.inject({ method: 'POST', url: '/explain', payload: { prediction_id: record!.id, patch: 4 } });
    assert.equal(res.statusCode, 200, res.body);
    const e = res.json();
    assert.equal(e.prediction_id, record!.id);
    assert.deepEqual(e.heatmap.grid, fromUpload.heatmap.grid);
    assert.deepEqual(e.occlusion.grid, fromUpload.occlusion.grid);
    assert.equal(e.heatmap.png_base64, fromUpload.heatmap.png_base64);
  });

  test('errors: unknown prediction, no stored heatmap, bad body, no image', async () => {
    const post = (payload: unknown, headers: Record<string, string> = {}) => h.app.inject({ method: 'POST', url: '/explain', headers, payload: payload as string });
    assert.equal((await post({ prediction_id: 'nope' })).statusCode, 404);
    const [bare] = predictionRecords({ idPrefix: 'bare', start: Date.now(), stats: [], embeddings: [], probabilities: [0.3] });
    await insertPredictions(h.platform, [bare!]);
    const noHeatmap = await post({ prediction_id: bare!.id });
    assert.equal(noHeatmap.statusCode, 404);
    assert.match(noHeatmap.json().error.message, /no stored heatmap/);
    assert.equal((await post({ id: 'x' })).statusCode, 400);
    assert.equal((await post('', { 'content-type': 'image/png' })).statusCode, 400);
    assert.equal((await post(Buffer.from('not an image'), { 'content-type': 'image/png' })).statusCode, 415);
    assert.equal((await h.app.inject({ method: 'POST', url: '/explain?model=unknown', headers: { 'content-type': 'image/png' }, payload: image })).statusCode, 404);
  });
});
