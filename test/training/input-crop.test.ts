import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { parseInputCrop } from '../../src/cli/commands/train.js';
import { generateChestXray } from '../../src/core/imaging/index.js';
import { buildDeploymentApp } from '../../src/deployment/app.js';
import { runCanary } from '../../src/deployment/service/canary.js';
import { RegistryModelSource } from '../../src/deployment/service/registry-source.js';
import { LocalModelRegistryClient } from '../../src/model-registry/service/local-client.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { hyperparametersSchema, trainRequestSchema } from '../../src/training/routes/schemas.js';
import { buildJobSpec, trackingParams } from '../../src/training/service/spec.js';
import type { JobRequest } from '../../src/training/store/types.js';
import { FINAL, makeDatasetVersion, openTraining, torchOrSkip, waitForJob, type TrainingHarness } from './helpers.js';

/**
 * hyperparameters.input_crop: the request contract, the CLI flag, the worker spec and tracking
 * params, then a model trained with a crop through the service, registered, and served with a
 * class-activation heatmap that covers the whole image (trainer/README.md, Input crop).
 */

const BOX = { top: 0.1, bottom: 0.9, left: 0.05, right: 0.55 };

describe('input_crop: request contract, CLI and worker spec', () => {
  test('the hyper-parameter is null or a box whose sides are at least 0.3 of the input', () => {
    assert.deepEqual(hyperparametersSchema.parse({ input_crop: BOX }), { input_crop: BOX });
    assert.deepEqual(hyperparametersSchema.parse({ input_crop: null }), { input_crop: null });
    assert.ok(hyperparametersSchema.safeParse({ input_crop: { top: 0.4, bottom: 0.7, left: 0, right: 1 } }).success, '0.7 - 0.4 counts as 0.3');
    for (const bad of [
      { top: 0.5, bottom: 0.7, left: 0, right: 1 },
      { top: 0.1, bottom: 0.9, left: 0.6, right: 0.4 },
      { top: -0.1, bottom: 0.9, left: 0, right: 1 },
      { top: 0.1, bottom: 1.1, left: 0, right: 1 },
      { top: 0.1, bottom: 0.9, left: 0 },
      { ...BOX, margin: 0.05 },
    ]) {
      const r = trainRequestSchema.safeParse({ dataset_version: 'v1', hyperparameters: { input_crop: bad } });
      assert.equal(r.success, false, JSON.stringify(bad));
      assert.deepEqual(r.error!.issues[0]!.path.slice(0, 2), ['hyperparameters', 'input_crop'], JSON.stringify(r.error!.issues));
    }
  });

  test('xray train --input-crop top,bottom,left,right', () => {
    assert.deepEqual(parseInputCrop('0.1,0.9,0.05,0.55'), BOX);
    assert.deepEqual(parseInputCrop(' 0.1, 0.9 ,0.05,0.55 '), BOX);
    assert.equal(parseInputCrop('none'), null);
    assert.throws(() => parseInputCrop('0.1,0.9,0.05'), /top,bottom,left,right/);
    assert.throws(() => parseInputCrop('0.1,0.9,,0.5'), /top,bottom,left,right/);
    assert.throws(() => parseInputCrop('0.5,0.6,0,1'), /bottom: bottom - top must be at least 0.3/);
  });

  test('the worker gets the box as given; the tracking run records it as one param', () => {
    const request = trainRequestSchema.parse({ dataset_version: 'v1', hyperparameters: { epochs: 2, input_crop: BOX } }) as JobRequest;
    const spec = buildJobSpec(request, { jobId: 'j', datasetDir: '/d', outputDir: '/o', threads: 1 });
    assert.deepEqual((spec.hyperparameters as Record<string, unknown>).input_crop, BOX);
    assert.deepEqual(JSON.parse(String(trackingParams(request)['hp.input_crop'])), BOX);
  });
});

describe('input_crop: trained, registered and served with a whole-image heatmap (real worker)', () => {
  let h: TrainingHarness;
  let version: string;
  let deployment: FastifyInstance | null = null;

  before(async () => {
    h = await openTraining();
    version = await makeDatasetVersion(h.platform, 12, 64);
  });
  after(async () => {
    await deployment?.close();
    await h.close();
  });

  test('POST /train with input_crop → register → /predict and /explain answer with a CAM that is zero outside the box', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const hyperparameters = { epochs: 1, batch_size: 8, max_train_batches: 2, warmup_epochs: 0, early_stopping_patience: null, lr: 0.003, input_crop: BOX };
    const res = await h.app.inject({ method: 'POST', url: '/train', payload: { dataset_version: version, model: 'compact_cnn', input_size: 64, seed: 5, hyperparameters } });
    assert.equal(res.statusCode, 202, res.body);
    const job = await waitForJob(h.app, res.json().job_id, (j) => FINAL.includes(j.state), 120_000);
    assert.equal(job.state, 'succeeded', job.error);
    // The TypeScript side's parity (onnxruntime-node) on the exported whole-image model.
    assert.equal(job.parity.ok, true, JSON.stringify(job.parity));

    const reg = await h.app.inject({ method: 'POST', url: `/train/${job.job_id}/register`, payload: { name: 'pneumonia' } });
    assert.equal(reg.statusCode, 201, reg.body);
    const registry = new ModelRegistryService(h.platform);
    const v = await registry.resolve('pneumonia', 1);
    const meta = v.metadata as Record<string, any>;
    // 64 px: the 52x32 px box's 4x4 map sits on a 5x8 full-frame grid, rows 0-5 and columns 0-4.
    assert.deepEqual(meta.input_crop.features_grid, [5, 8]);
    assert.deepEqual(meta.input_crop.features_box, { top: 0, bottom: 5, left: 0, right: 4 });
    assert.deepEqual(meta.hyperparameters.input_crop, BOX);
    assert.equal(meta.input_size, 64);
    // The deployment's canary load accepts it (serving contract, reference images reproduced).
    const canary = await runCanary(new RegistryModelSource(new LocalModelRegistryClient(registry)), 'pneumonia', '1');
    assert.equal(canary.servable, true, canary.message);
    await registry.setStage({ name: 'pneumonia', version: 1, stage: 'Production', actor: { name: 'tester', role: 'admin' }, force: true, reason: 'test', skipCanary: 'checked above' });

    deployment = await buildDeploymentApp(h.platform);
    const image = await generateChestXray({ seed: 4, size: 96, pneumonia: true });
    let body: any = null;
    for (let i = 0; i < 400 && !body; i++) {
      const p = await deployment.inject({ method: 'POST', url: '/predict?heatmap=inline', payload: image, headers: { 'content-type': 'image/png' } });
      if (p.statusCode === 200) body = p.json();
      else await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(body, 'the cropped model was loaded and answered');
    assert.deepEqual(body.model, { name: 'pneumonia', version: '1' });
    assert.equal(body.heatmap_method, 'cam');
    const png = await sharp(Buffer.from(body.heatmap_png_base64, 'base64')).metadata();
    assert.deepEqual([png.format, png.width, png.height], ['png', 64, 64], 'the overlay covers the whole input');

    const models = (await deployment.inject({ method: 'GET', url: '/models' })).json();
    const served = (models.models ?? models).find((m: any) => m.name === 'pneumonia');
    assert.deepEqual(served.outputs.find((o: any) => o.name === 'features').shape, [-1, 128, 5, 8]);

    const ex = await deployment.inject({ method: 'POST', url: '/explain?patch=8', payload: image, headers: { 'content-type': 'image/png' } });
    assert.equal(ex.statusCode, 200, ex.body);
    const e = ex.json();
    assert.equal(e.heatmap.method, 'cam');
    assert.deepEqual([e.heatmap.h, e.heatmap.w], [5, 8]);
    assert.ok(Math.abs(e.probability - body.probability) < 1e-6);
    const grid: number[] = e.heatmap.grid;
    const outside = grid.filter((_, i) => i % 8 >= 4);
    assert.ok(outside.every((x) => x === 0), `outside the box: ${outside}`);
    // Normalised over the box (then scaled by the probability): its peak is inside and equals the probability.
    const peak = Math.max(...grid);
    assert.ok(peak > 0 && Math.abs(peak - e.probability) < 1e-3, `peak ${peak} vs p ${e.probability}`);
  });
});
