import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { runCanary } from '../../src/deployment/service/canary.js';
import { RegistryModelSource } from '../../src/deployment/service/registry-source.js';
import { LocalModelRegistryClient } from '../../src/model-registry/service/local-client.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { FINAL, allEvents, makeDatasetVersion, openTraining, torchOrSkip, waitForJob, type TrainingHarness } from './helpers.js';

/** Tiny, fast jobs: 32-pixel synthetic images, a couple of batches per epoch. */
const tiny = (epochs: number, extra: Record<string, unknown> = {}) => ({
  model: 'compact_cnn',
  input_size: 32,
  seed: 7,
  hyperparameters: { epochs, batch_size: 8, max_train_batches: 3, warmup_epochs: 0, early_stopping_patience: null, lr: 0.003 },
  ...extra,
});

describe('training service with the real PyTorch worker', () => {
  let h: TrainingHarness;
  let version: string;

  before(async () => {
    h = await openTraining();
    version = await makeDatasetVersion(h.platform);
  });
  after(() => h.close());

  test('trains a job end to end: metrics, artifacts, ONNX parity, tracking, audit', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const res = await h.app.inject({ method: 'POST', url: '/train', payload: { dataset_version: version, ...tiny(2), experiment: 'unit-tests' } });
    assert.equal(res.statusCode, 202, res.body);
    const { job_id } = res.json();
    const job = await waitForJob(h.app, job_id, (j) => FINAL.includes(j.state));
    assert.equal(job.state, 'succeeded', job.error);
    assert.equal(job.attempt, 1);
    assert.equal(job.progress.fraction, 1);
    assert.deepEqual(job.history.map((e: any) => e.epoch), [1, 2]);
    for (const e of job.history) assert.ok(Number.isFinite(e.train_loss) && Number.isFinite(e.images_per_sec));
    assert.ok(job.metrics.auc >= 0 && job.metrics.auc <= 1);
    assert.ok(job.metrics.confusion && job.metrics.n > 0);
    assert.ok(job.threshold > 0 && job.threshold < 1);
    for (const kind of ['checkpoint', 'onnx', 'model_meta', 'evaluation', 'roc_png', 'calibration_png']) {
      assert.ok(job.artifacts[kind], `artifact ${kind} stored (has ${Object.keys(job.artifacts)})`);
      assert.match(job.artifacts[kind].key, /^training\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{64}/);
      assert.ok(await h.platform.objects.exists(job.artifacts[kind].key));
    }
    // Parity is recomputed in TypeScript when the worker has no onnxruntime.
    assert.ok(job.parity, 'parity recorded');
    assert.equal(typeof job.parity.max_abs_diff, 'number');
    assert.ok(job.parity.max_abs_diff <= 1e-4, `parity ${job.parity.max_abs_diff}`);
    assert.equal(job.parity.ok, true);

    // The stored ONNX model loads and answers with the documented outputs.
    const onnx = await h.app.inject({ method: 'GET', url: `/train/${job_id}/artifacts/onnx` });
    assert.equal(onnx.statusCode, 200);
    const session = await ort.InferenceSession.create(onnx.rawPayload);
    assert.deepEqual(session.inputNames, ['input']);
    assert.deepEqual([...session.outputNames].sort(), ['features', 'probability']);
    const out = await session.run({ input: new ort.Tensor('float32', new Float32Array(2 * 32 * 32).fill(0.5), [2, 1, 32, 32]) });
    assert.deepEqual(out.probability!.dims, [2, 1]);
    await session.release();

    const sse = await h.app.inject({ method: 'GET', url: `/train/${job_id}/stream` });
    assert.match(String(sse.headers['content-type']), /text\/event-stream/);
    assert.match(sse.body, /^id: 1\nevent: state\n/m);
    assert.match(sse.body, /event: finished\ndata: \{/);
    assert.match(sse.body, /event: end\ndata: \{"state":"succeeded"\}/);
    const negotiated = await h.app.inject({ method: 'GET', url: `/train/${job_id}/events`, headers: { accept: 'text/event-stream' } });
    assert.equal(negotiated.body, sse.body, 'GET /events with Accept: text/event-stream is the same stream');

    const names = (await allEvents(h.app, job_id)).map((e) => e.event);
    for (const name of ['state', 'started', 'epoch', 'checkpoint', 'evaluation', 'artifact', 'finished']) assert.ok(names.includes(name), `${name} in ${names}`);

    const audit = await h.platform.audit.query({ resource: `training-job:${job_id}` });
    const actions = audit.items.map((a) => a.action);
    assert.ok(actions.includes('training.start') && actions.includes('training.finish'), String(actions));

    const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /xray_training_jobs\{[^}]*state="succeeded"[^}]*\} [1-9]/);
    assert.match(metrics.body, /xray_training_epochs_total\{[^}]*model="compact_cnn"[^}]*\} [1-9]/);

    const list = await h.app.inject({ method: 'GET', url: '/train?page_size=10' });
    assert.ok(list.json().jobs.some((j: any) => j.job_id === job_id));

    // Experiment tracking: the run has params, per-epoch metrics, tags and artifacts.
    assert.ok(job.run_id, 'a tracking run was created');
    const exps = (await h.app.inject({ method: 'GET', url: '/experiments' })).json();
    assert.equal(exps.source, 'tracking');
    const exp = exps.experiments.find((e: any) => e.name === 'unit-tests');
    assert.ok(exp, JSON.stringify(exps));
    const runs = (await h.app.inject({ method: 'GET', url: `/experiments/${exp.experiment_id}/runs` })).json().runs;
    const run = runs.find((r: any) => r.info.run_id === job.run_id);
    assert.equal(run.info.status, 'FINISHED');
    const tag = (k: string) => run.data.tags.find((x: any) => x.key === k)?.value;
    assert.equal(tag('xray.dataset_version'), version);
    assert.ok(tag('xray.preprocessing_hash'));
    assert.ok(tag('mlflow.source.git.commit'));
    assert.equal(run.data.params.find((p: any) => p.key === 'hp.epochs')?.value, '2');
    assert.ok(run.data.metrics.some((m: any) => m.key === 'val_auc'));
    // Per-step loss, not only per epoch: the last step of the run is the latest point.
    assert.ok(run.data.metrics.some((m: any) => m.key === 'train_loss_step' && m.step > 1 && m.value > 0), JSON.stringify(run.data.metrics));
    assert.equal(run.inputs.dataset_inputs.length, 1);

    // One call registers the model (ONNX from the run, metadata from model.json + parity + lineage).
    const reg = await h.app.inject({ method: 'POST', url: `/train/${job_id}/register`, payload: { name: 'pneumonia-test' } });
    assert.equal(reg.statusCode, 201, reg.body);
    assert.equal(reg.json().registered.name, 'pneumonia-test');
    assert.equal(reg.json().registered.version, 1);
    assert.equal(reg.json().registered.run_id, job.run_id);
    const after = (await h.app.inject({ method: 'GET', url: `/train/${job_id}` })).json();
    assert.equal(after.registered.version, 1);

    // The version carries its reference images, and the deployment's canary load reproduces them.
    assert.ok(job.artifacts.canary, 'canary.json recorded from the parity samples');
    const canary = await runCanary(new RegistryModelSource(new LocalModelRegistryClient(new ModelRegistryService(h.platform))), 'pneumonia-test', '1');
    assert.equal(canary.servable, true, canary.message);
    assert.ok(canary.reference && canary.reference.n > 0 && canary.reference.max_abs_diff <= canary.reference.tolerance, JSON.stringify(canary.reference));
  });

  test('export.int8: a QDQ variant whose parity gate onnxruntime-node measures, registered as a child of the FP32 version; a failed gate never serves', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const refused = await h.app.inject({ method: 'POST', url: '/train', payload: { dataset_version: version, ...tiny(1), export: { onnx: false, int8: true } } });
    assert.equal(refused.statusCode, 400, refused.body);
    const res = await h.app.inject({ method: 'POST', url: '/train', payload: { dataset_version: version, ...tiny(2), export: { int8: true, int8_calibration: 16 } } });
    assert.equal(res.statusCode, 202, res.body);
    const job = await waitForJob(h.app, res.json().job_id, (j) => FINAL.includes(j.state));
    assert.equal(job.state, 'succeeded', job.error);
    const gate = job.parity.int8;
    assert.equal(gate.method, 'onnxruntime-node');
    assert.equal(gate.n, job.metrics.n, 'the whole validation split');
    assert.ok(gate.probability_mae >= 0 && gate.probability_max_abs_diff >= gate.probability_mae, JSON.stringify(gate));
    assert.equal(gate.passed, gate.auc_drop !== null && gate.auc_drop <= 0.002 + 1e-12 && gate.probability_mae <= 0.01, JSON.stringify(gate));
    assert.ok(Math.abs(gate.auc_fp32 - job.metrics.auc) < 0.02, `ORT's FP32 AUC ${gate.auc_fp32} is the worker's ${job.metrics.auc}`);
    assert.ok(gate.speed.fp32_images_per_s > 0 && gate.speed.int8_images_per_s > 0);
    assert.ok(job.artifacts.onnx_int8 && job.artifacts.canary_int8, Object.keys(job.artifacts).join());

    const int8 = await ort.InferenceSession.create(await h.platform.objects.get(job.artifacts.onnx_int8.key));
    assert.deepEqual([...int8.outputNames].sort(), ['features', 'probability']);
    await int8.release();

    const reg = await h.app.inject({ method: 'POST', url: `/train/${job.job_id}/register`, payload: { name: 'pneumonia-int8' } });
    assert.equal(reg.statusCode, 201, reg.body);
    assert.equal(reg.json().registered.version, 1);
    assert.deepEqual(reg.json().registered.int8_variant, { version: 2, gate_passed: gate.passed });
    const registry = new ModelRegistryService(h.platform);
    const variant = await registry.registry.getModelVersion('pneumonia-int8', 2);
    assert.deepEqual((variant.metadata as any).variant.of, { name: 'pneumonia-int8', version: 1 });
    assert.deepEqual((variant.metadata as any).variant.gate, gate);
    assert.equal(variant.val_auc, gate.auc_int8, 'the variant is judged on its own ONNX Runtime AUC');
    assert.equal(variant.onnx?.sha256, job.artifacts.onnx_int8.sha256);
    const source = new RegistryModelSource(new LocalModelRegistryClient(registry));
    if (gate.passed) {
      const canary = await runCanary(source, 'pneumonia-int8', '2');
      assert.equal(canary.servable, true, canary.message);
      assert.ok(canary.reference && canary.reference.n > 0, 'its canary holds its own INT8 outputs');
    }

    // The same file with a failed gate: registered for the record, never promoted (not even forced), never served.
    const failed = { ...gate, passed: false, message: 'AUC 0.9000 is 0.0500 below the FP32 model\'s 0.9500 (at most 0.002)' };
    const forged = await registry.register({
      name: 'pneumonia-int8',
      actor: { name: 'tester', role: 'ml-engineer' },
      source: { kind: 'upload', data: await h.platform.objects.get(job.artifacts.onnx_int8.key) },
      metadata: { metrics: { auc: 0.9 }, variant: { kind: 'int8', of: { name: 'pneumonia-int8', version: 1 }, gate: failed } },
      // As the training service would write it (only a platform service may write a variant record).
      fromService: true,
    });
    await assert.rejects(
      registry.setStage({ name: 'pneumonia-int8', version: forged.version, stage: 'Production', actor: { name: 'root', role: 'admin' }, force: true, reason: 'try anyway' }),
      (err: any) => err.code === 'NOT_SERVABLE' && /failed its parity gate: AUC 0.9000/.test(err.message),
    );
    await assert.rejects(source.resolve('pneumonia-int8', String(forged.version)), (err: any) => err.code === 'NOT_SERVABLE');
    const malformed = await registry.register({
      name: 'pneumonia-int8',
      actor: { name: 'tester', role: 'ml-engineer' },
      source: { kind: 'upload', data: await h.platform.objects.get(job.artifacts.onnx_int8.key) },
      metadata: { metrics: { auc: 0.9 }, variant: { kind: 'int8', gate: 'trust me' } },
      // As the training service would write it (only a platform service may write a variant record).
      fromService: true,
    });
    await assert.rejects(source.resolve('pneumonia-int8', String(malformed.version)), (err: any) => err.code === 'NOT_SERVABLE' && /malformed/.test(err.message));
    // The INT8 file uploaded on its own: its ONNX metadata says it is a variant, and nothing says it passed.
    const bare = await registry.register({ name: 'pneumonia-int8', actor: { name: 'tester', role: 'ml-engineer' }, source: { kind: 'upload', data: await h.platform.objects.get(job.artifacts.onnx_int8.key) } });
    await assert.rejects(source.resolve('pneumonia-int8', String(bare.version)), (err: any) => err.code === 'NOT_SERVABLE' && /registered without its parity gate/.test(err.message));
  });

  test('a job whose input size differs from its dataset version\'s preprocessing is refused at submission', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/train', payload: { dataset_version: version, ...tiny(1), input_size: 64 } });
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.json().error.message, /input_size 64 does not match dataset version .*preprocessed at 32x32/);
    const study = await h.app.inject({
      method: 'POST',
      url: '/optimize',
      payload: { dataset_version: version, ...tiny(1), input_size: undefined, n_trials: 2, search_space: { input_size: { type: 'categorical', choices: [32, 64] } } },
    });
    assert.equal(study.statusCode, 400, study.body);
    assert.match(study.json().error.message, /search_space.input_size tries sizes other than 32/);
  });

  test('SIGKILL mid-training, then resume: continues from the checkpoint epoch', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const res = await h.app.inject({ method: 'POST', url: '/train', payload: { dataset_version: version, ...tiny(8), register_as: 'pneumonia-auto' } });
    const { job_id } = res.json();
    const running = await waitForJob(h.app, job_id, (j) => FINAL.includes(j.state) || (j.last_checkpoint?.epoch >= 1 && j.worker?.pid), 90_000, 25);
    assert.equal(running.state, 'running', 'the job must still run after its first checkpoint');
    const ckEpoch = running.last_checkpoint.epoch;
    process.kill(running.worker.pid, 'SIGKILL');
    const dead = await waitForJob(h.app, job_id, (j) => FINAL.includes(j.state));
    assert.equal(dead.state, 'failed');
    assert.match(dead.error, /SIGKILL/);
    assert.ok(dead.last_checkpoint.epoch >= ckEpoch);
    assert.equal(dead.last_checkpoint.stored, true, 'the checkpoint was copied to the object store');

    const resumed = await h.app.inject({ method: 'POST', url: `/train/${job_id}/resume` });
    assert.equal(resumed.statusCode, 202, resumed.body);
    const done = await waitForJob(h.app, job_id, (j) => j.attempt === 2 && FINAL.includes(j.state));
    assert.equal(done.state, 'succeeded', done.error);
    const started = (await allEvents(h.app, job_id)).filter((e) => e.event === 'started');
    assert.equal(started.length, 2);
    assert.equal(started[0].data.start_epoch, 1);
    assert.equal(started[1].data.start_epoch, dead.last_checkpoint.epoch + 1, 'resumed after the checkpointed epoch, not from 0');
    assert.deepEqual(done.history.map((e: any) => e.epoch), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(done.history[0].attempt, 1, 'epochs before the kill come from attempt 1');
    assert.equal(done.history.at(-1).attempt, 2);
    const registered = await waitForJob(h.app, job_id, (j) => j.registered !== null || j.error !== null, 30_000);
    assert.equal(registered.registered?.name, 'pneumonia-auto', registered.error);
  });

  test('cancel: the worker checkpoints and the job ends cancelled', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const { job_id } = (await h.app.inject({ method: 'POST', url: '/train', payload: { dataset_version: version, ...tiny(8, { export: { onnx: false } }) } })).json();
    await waitForJob(h.app, job_id, (j) => FINAL.includes(j.state) || j.progress?.phase === 'training', 90_000, 25);
    const del = await h.app.inject({ method: 'DELETE', url: `/train/${job_id}` });
    assert.equal(del.statusCode, 202, del.body);
    const job = await waitForJob(h.app, job_id, (j) => FINAL.includes(j.state));
    assert.equal(job.state, 'cancelled');
    assert.ok(job.last_checkpoint, 'a checkpoint was kept');
    assert.equal(job.last_checkpoint.stored, true);
    const again = await h.app.inject({ method: 'DELETE', url: `/train/${job_id}` });
    assert.equal(again.statusCode, 409);
    const audit = await h.platform.audit.query({ resource: `training-job:${job_id}`, action: 'training.cancel' });
    assert.equal(audit.items.length, 1);
  });

  test('an Optuna study with the median pruner records every trial', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const res = await h.app.inject({
      method: 'POST',
      url: '/optimize',
      payload: {
        dataset_version: version,
        ...tiny(3, { hyperparameters: { epochs: 3, batch_size: 8, max_train_batches: 2, warmup_epochs: 0, early_stopping_patience: null } }),
        search_space: { lr: { type: 'float', low: 1e-4, high: 1e-2, log: true }, dropout: { type: 'categorical', choices: [0.1, 0.3] } },
        n_trials: 4,
        pruner: 'median',
        pruner_startup_trials: 1,
      },
    });
    assert.equal(res.statusCode, 202, res.body);
    const { study_id } = res.json();
    const until = Date.now() + 120_000;
    let study: any;
    for (;;) {
      study = (await h.app.inject({ method: 'GET', url: `/optimize/${study_id}` })).json();
      if (FINAL.includes(study.state) || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(study.state, 'succeeded', study.error);
    assert.equal(study.trials.length, 4);
    for (const trial of study.trials) {
      assert.ok(['complete', 'pruned'].includes(trial.state), `trial ${trial.trial} is ${trial.state}`);
      assert.ok(typeof trial.params.lr === 'number' && [0.1, 0.3].includes(trial.params.dropout as number));
      assert.ok(trial.history.length >= 1);
    }
    assert.ok(study.best && study.trials.some((tr: any) => tr.trial === study.best.trial && tr.state === 'complete'));
  });

  test('a restart marks the running job interrupted; it resumes from its checkpoint', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const { job_id } = (await h.app.inject({ method: 'POST', url: '/train', payload: { dataset_version: version, ...tiny(8, { export: { onnx: false } }) } })).json();
    const running = await waitForJob(h.app, job_id, (j) => FINAL.includes(j.state) || j.last_checkpoint?.epoch >= 1, 90_000, 25);
    assert.equal(running.state, 'running');
    await h.stop();
    h = await openTraining({}, h.home);
    const job = (await h.app.inject({ method: 'GET', url: `/train/${job_id}` })).json();
    assert.equal(job.state, 'interrupted');
    assert.ok(job.last_checkpoint.epoch >= 1);
    const res = await h.app.inject({ method: 'POST', url: `/train/${job_id}/resume` });
    assert.equal(res.statusCode, 202, res.body);
    const done = await waitForJob(h.app, job_id, (j) => j.attempt === 2 && FINAL.includes(j.state));
    assert.equal(done.state, 'succeeded', done.error);
    const started = (await allEvents(h.app, job_id)).filter((e) => e.event === 'started');
    assert.ok(started[1].data.start_epoch > 1, `resumed at epoch ${started[1].data.start_epoch}`);
  });
});
