/**
 * Ensembles served as one model, through the training service with the real PyTorch worker: two
 * tiny jobs (different architectures) → POST /train {ensemble_of} → a normal succeeded job with one
 * ONNX graph → registered like any job (lineage names the members) → served by the deployment with a
 * class-activation heatmap. Plus the refusals (unknown member, unfinished member, mismatched dataset).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { generateChestXray } from '../../src/core/imaging/synthetic.js';
import { buildDeploymentApp } from '../../src/deployment/app.js';
import { runCanary } from '../../src/deployment/service/canary.js';
import { RegistryModelSource } from '../../src/deployment/service/registry-source.js';
import { LocalModelRegistryClient } from '../../src/model-registry/service/local-client.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { newJobId } from '../../src/training/service/paths.js';
import { FINAL, allEvents, jobRecord, makeDatasetVersion, openTraining, torchOrSkip, waitForJob, type TrainingHarness } from './helpers.js';

const tiny = (model: string, epochs: number) => ({
  model,
  seed: 7,
  hyperparameters: { epochs, batch_size: 8, max_train_batches: 3, warmup_epochs: 0, early_stopping_patience: null, lr: 0.003 },
});

describe('ensemble jobs: two finished jobs served as one model', () => {
  let h: TrainingHarness;
  let version: string;

  before(async () => {
    h = await openTraining();
    version = await makeDatasetVersion(h.platform);
  });
  after(() => h.close());

  const post = (payload: Record<string, unknown>) => h.app.inject({ method: 'POST', url: '/train', payload });

  test('refused at submission: bad member lists and training options', async () => {
    const one = await post({ ensemble_of: [newJobId()] });
    assert.equal(one.statusCode, 400, one.body);
    const unknown = await post({ ensemble_of: [newJobId(), newJobId()] });
    assert.equal(unknown.statusCode, 404, unknown.body);
    assert.equal(unknown.json().error.code, 'NOT_FOUND');
    assert.match(unknown.json().error.message, /ensemble member: training job 't-.*' does not exist/);
    // A member on another dataset version (a finished job recorded directly).
    const a = jobRecord({ state: 'succeeded', datasetVersion: 'version-a', datasetDir: null, lastCheckpoint: { epoch: 1, step: 0, path: '/gone.pt', objectKey: 'training/aa/bb/x.pt', attempt: 1 } });
    const b = jobRecord({ state: 'succeeded', datasetVersion: 'version-b', datasetDir: null, lastCheckpoint: { epoch: 1, step: 0, path: '/gone.pt', objectKey: 'training/aa/bb/y.pt', attempt: 1 } });
    await h.app.ready();
    const { KyselyTrainingStore } = await import('../../src/training/store/training-store.js');
    const store = new KyselyTrainingStore(h.platform.database);
    await store.createJob(a);
    await store.createJob(b);
    const mixed = await post({ ensemble_of: [a.id, b.id] });
    assert.equal(mixed.statusCode, 400, mixed.body);
    assert.equal(mixed.json().error.code, 'INVALID_INPUT');
    assert.match(mixed.json().error.message, /must share one dataset version/);
    const trainingOptions = await post({ ensemble_of: [a.id, b.id], hyperparameters: { epochs: 3 } });
    assert.equal(trainingOptions.statusCode, 400, trainingOptions.body);
    assert.match(trainingOptions.json().error.message, /trains nothing: drop hyperparameters/);
  });

  test('two tiny jobs → ensemble job → registered → served with a CAM heatmap', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const ids: string[] = [];
    for (const [model, epochs] of [['compact_cnn', 2], ['compact_resnet', 1]] as const) {
      const res = await post({ dataset_version: version, ...tiny(model, epochs) });
      assert.equal(res.statusCode, 202, res.body);
      ids.push(res.json().job_id);
    }
    // Unfinished members are refused (they are queued or running now).
    const early = await post({ ensemble_of: ids });
    assert.equal(early.statusCode, 409, early.body);
    assert.equal(early.json().error.code, 'CONFLICT');
    assert.match(early.json().error.message, /only succeeded jobs can be combined/);
    for (const id of ids) {
      const job = await waitForJob(h.app, id, (j) => FINAL.includes(j.state));
      assert.equal(job.state, 'succeeded', job.error);
    }
    // A --dataset that is not the members' is refused.
    const other = await post({ ensemble_of: ids, dataset_version: 'another-version' });
    assert.equal(other.statusCode, 400, other.body);
    assert.equal(other.json().error.code, 'INVALID_INPUT');
    assert.match(other.json().error.message, /not the one the ensemble's members were trained on/);

    const res = await post({ ensemble_of: ids, dataset_version: version, threshold: { method: 'robust' }, experiment: 'ensembles' });
    assert.equal(res.statusCode, 202, res.body);
    const id = res.json().job_id;
    const job = await waitForJob(h.app, id, (j) => FINAL.includes(j.state));
    assert.equal(job.state, 'succeeded', job.error);
    assert.equal(job.model, 'ensemble');
    assert.equal(job.dataset_version, version);
    assert.equal(job.input_size, 32);
    assert.equal(job.best_epoch, null);
    assert.equal(job.progress.fraction, 1);
    assert.equal(job.metrics.threshold_method, 'robust');
    assert.ok(job.threshold > 0 && job.threshold < 1);
    assert.deepEqual(job.request.ensemble_of, ids);
    for (const kind of ['onnx', 'model_meta', 'evaluation', 'state_dict', 'canary']) assert.ok(job.artifacts[kind], `artifact ${kind} (has ${Object.keys(job.artifacts)})`);
    // Parity is repeated with onnxruntime-node when the worker has no onnxruntime.
    assert.equal(job.parity.ok, true, JSON.stringify(job.parity));
    assert.ok(job.parity.max_abs_diff <= 1e-4);
    const names = (await allEvents(h.app, id)).map((e) => e.event);
    for (const name of ['started', 'progress', 'evaluation', 'artifact', 'finished']) assert.ok(names.includes(name), `${name} in ${names}`);
    const meta = (await h.app.inject({ method: 'GET', url: `/train/${id}/artifacts/model_meta` })).json();
    assert.deepEqual(meta.ensemble.members, ids);
    assert.equal(meta.ensemble.combine, 'mean-logit');
    assert.equal(meta.classifier_weight.length, meta.feature_channels);

    const reg = await h.app.inject({ method: 'POST', url: `/train/${id}/register`, payload: { name: 'pneumonia' } });
    assert.equal(reg.statusCode, 201, reg.body);
    const registry = new ModelRegistryService(h.platform);
    const v = await registry.resolve('pneumonia', 1);
    const lineage = (v.metadata as any).lineage;
    assert.equal(lineage.training_job, id);
    assert.deepEqual(lineage.ensemble_of.map((m: any) => m.job_id), ids);
    assert.ok(lineage.ensemble_of.every((m: any) => typeof m.run_id === 'string'), JSON.stringify(lineage.ensemble_of));
    const chain = (await registry.lineage('pneumonia', 1)).chain;
    assert.deepEqual(chain.filter((n) => n.kind === 'ensemble_member').map((n) => n.id), ids);

    // The deployment serves it unchanged, with a class-activation heatmap over all members' features.
    // The deployment's canary load: its shape checks pass and it reproduces the worker's probabilities.
    const canary = await runCanary(new RegistryModelSource(new LocalModelRegistryClient(registry)), 'pneumonia', '1');
    assert.equal(canary.servable, true, canary.message);
    assert.ok(canary.reference && canary.reference.n > 0 && canary.reference.max_abs_diff <= canary.reference.tolerance, JSON.stringify(canary.reference));
    await registry.setStage({ name: 'pneumonia', version: 1, stage: 'Production', actor: { name: 'tester', role: 'admin' }, force: true, reason: 'test', skipCanary: 'checked above with runCanary' });
    const deployment: FastifyInstance = await buildDeploymentApp(h.platform);
    try {
      const image = await generateChestXray({ seed: 5, size: 64, pneumonia: true });
      let p = await deployment.inject({ method: 'POST', url: '/predict?heatmap=inline', headers: { 'content-type': 'image/png' }, payload: image });
      for (const until = Date.now() + 30_000; p.statusCode === 503 && Date.now() < until; ) {
        await new Promise((r) => setTimeout(r, 200)); // the production model loads in the background
        p = await deployment.inject({ method: 'POST', url: '/predict?heatmap=inline', headers: { 'content-type': 'image/png' }, payload: image });
      }
      assert.equal(p.statusCode, 200, p.body);
      const body = p.json();
      assert.ok(body.probability >= 0 && body.probability <= 1);
      assert.equal(body.heatmap_method, 'cam');
      assert.ok(body.heatmap_png_base64.length > 100);
      const loaded = (await deployment.inject({ method: 'GET', url: '/models' })).json();
      assert.match(JSON.stringify(loaded), /"heatmap_method":"cam"/);
    } finally {
      await deployment.close();
    }
  });
});
