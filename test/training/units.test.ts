import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { testConfig } from '../../src/core/config/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { parseEventLine } from '../../src/training/runner/events.js';
import { etaSeconds } from '../../src/training/service/views.js';
import { buildJobSpec, buildStudySpec } from '../../src/training/service/spec.js';
import { optimizeRequestSchema, trainRequestSchema } from '../../src/training/routes/schemas.js';
import { newJobId, newStudyId, ID_PATTERN, jobPaths } from '../../src/training/service/paths.js';
import { checkDatasetDir } from '../../src/training/service/datasets.js';
import { KyselyTrainingStore } from '../../src/training/store/training-store.js';
import type { JobRecord } from '../../src/training/store/types.js';
import { jobRecord } from './helpers.js';

describe('worker event parsing', () => {
  test('known events are checked, extra fields kept', () => {
    const e = parseEventLine('{"event":"epoch","epoch":2,"epochs":5,"train_loss":0.5,"val_loss":0.6,"val_auc":0.8,"lr":0.001,"images_per_sec":80,"seconds":3,"best_val_auc":0.8,"early_stopped":false,"extra":1}');
    assert.equal(e?.event, 'epoch');
    assert.equal((e as any).extra, 1);
  });
  test('non-JSON and JSON without an event are not events', () => {
    assert.equal(parseEventLine('Traceback (most recent call last):'), null);
    assert.equal(parseEventLine('{"no_event": 1}'), null);
    assert.equal(parseEventLine('[1,2]'), null);
    assert.equal(parseEventLine('{broken'), null);
  });
  test('a known event with a wrong shape becomes "other" with the problem, unknown names too', () => {
    const bad = parseEventLine('{"event":"epoch","epoch":"two"}');
    assert.equal(bad?.event, 'other');
    assert.ok(bad?.event === 'other' && bad.problem && bad.name === 'epoch');
    const unknown = parseEventLine('{"event":"bench","x":1}');
    assert.ok(unknown?.event === 'other' && unknown.name === 'bench' && !unknown.problem);
  });
  test('progress carries per-step losses as [global step, loss] pairs; a malformed list is not accepted', () => {
    const e = parseEventLine('{"event":"progress","epoch":1,"step":4,"steps":10,"loss":0.7,"step_losses":[[3,0.71],[4,0.69]]}');
    assert.ok(e?.event === 'progress' && e.step_losses?.length === 2 && e.step_losses[1]![0] === 4);
    assert.equal(parseEventLine('{"event":"progress","epoch":1,"step":4,"steps":10,"step_losses":[[3]]}')?.event, 'other');
  });
  test('null metrics (non-finite on the worker side) are accepted', () => {
    const e = parseEventLine('{"event":"epoch","epoch":1,"epochs":1,"val_auc":null,"train_loss":null}');
    assert.equal(e?.event, 'epoch');
  });
});

describe('ids, paths, specs', () => {
  test('ids are path-safe and checked before touching the filesystem', () => {
    assert.match(newJobId(), ID_PATTERN);
    assert.match(newStudyId(), ID_PATTERN);
    assert.throws(() => jobPaths('/home', '../../etc'), /not a training job/);
  });
  test('dataset_dir must be an export inside the allowed roots', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'xray-dsdir-'));
    try {
      assert.throws(() => checkDatasetDir('/etc', [root]), /inside XRAY_HOME/);
      assert.throws(() => checkDatasetDir(path.join(root, 'x'), [root]), /not a dataset export/);
      assert.throws(() => checkDatasetDir(path.join(root, '..', 'elsewhere'), [root]), /inside XRAY_HOME/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  test('job and study specs carry what the protocol needs', () => {
    const spec = buildJobSpec(
      { model: 'compact_cnn', input_size: 64, hyperparameters: { epochs: 3 }, augmentation: { rotation_deg: 5 } },
      { jobId: 't-x', datasetDir: '/d', outputDir: '/o', threads: 2, resumeFrom: '/o/checkpoints/last.pt' },
    );
    assert.deepEqual(spec, {
      job_id: 't-x',
      dataset_dir: '/d',
      output_dir: '/o',
      model: 'compact_cnn',
      seed: 42,
      threads: 2,
      resume_from: '/o/checkpoints/last.pt',
      hyperparameters: { epochs: 3 },
      input_size: 64,
      augmentation: { rotation_deg: 5 },
    });
    const study = buildStudySpec(
      { model: 'compact_cnn', hyperparameters: {}, search_space: { lr: { type: 'float', low: 0.001, high: 0.01 } }, n_trials: 4, pruner: 'median', concurrency: 1 },
      { jobId: 's-x', datasetDir: '/d', outputDir: '/o', threads: 2 },
    );
    assert.equal((study.export as any).onnx, false, 'trials skip ONNX unless asked');
    assert.equal(study.resume_from, null);
    assert.deepEqual((study.study as any).search_space, { lr: { type: 'float', low: 0.001, high: 0.01 } });
  });
  test('mixup_alpha and cutmix_alpha: range-checked by the API and passed to the worker spec as given', () => {
    const hyperparameters = { epochs: 3, label_smoothing: 0.1, mixup_alpha: 0.2, cutmix_alpha: 1 };
    const request = trainRequestSchema.parse({ dataset_version: 'v1', hyperparameters });
    assert.deepEqual(request.hyperparameters, hyperparameters);
    for (const bad of [{ mixup_alpha: 1.5 }, { cutmix_alpha: -0.1 }, { mixup_alpha: '0.2' }]) {
      assert.equal(trainRequestSchema.safeParse({ dataset_version: 'v1', hyperparameters: bad }).success, false, JSON.stringify(bad));
    }
    const spec = buildJobSpec(request, { jobId: 't-x', datasetDir: '/d', outputDir: '/o', threads: 2 });
    assert.deepEqual(spec.hyperparameters, hyperparameters);
    // Searchable in studies like every hyper-parameter (the worker checks the names).
    const study = optimizeRequestSchema.parse({ dataset_version: 'v1', search_space: { mixup_alpha: { type: 'float', low: 0, high: 0.4 }, cutmix_alpha: { type: 'categorical', choices: [0, 1] } } });
    const studySpec = buildStudySpec(study, { jobId: 's-x', datasetDir: '/d', outputDir: '/o', threads: 2 });
    assert.deepEqual(Object.keys((studySpec.study as any).search_space), ['mixup_alpha', 'cutmix_alpha']);
  });
});

describe('ETA', () => {
  const base = { state: 'running', progress: { phase: 'training', epoch: 2, epochs: 4, step: 0, steps: 10, fraction: 0.5 } } as unknown as JobRecord;
  test('from the pace since the worker started, excluding skipped epochs', () => {
    const now = 1_000_000;
    const job = { ...base, info: { started_at: now - 10_000, start_fraction: 0.25 } } as JobRecord;
    // 0.25 of the job took 10 s; 0.5 is left → 20 s.
    assert.equal(etaSeconds(job, now), 20);
  });
  test('unknown before any progress or when not running', () => {
    assert.equal(etaSeconds({ ...base, info: { started_at: 1, start_fraction: 0.5 } } as JobRecord, 10), null);
    assert.equal(etaSeconds({ ...base, state: 'succeeded', info: { started_at: 1, start_fraction: 0 } } as JobRecord, 10), null);
  });
});

describe('training store (SQLite)', () => {
  let home: string;
  let platform: Platform;
  let store: KyselyTrainingStore;
  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-train-store-'));
    platform = await openPlatform(testConfig(home));
    store = new KyselyTrainingStore(platform.database);
  });
  after(async () => {
    await platform.close();
    rmSync(home, { recursive: true, force: true });
  });

  const job = (id: string, createdAt: number): JobRecord =>
    jobRecord({ id, datasetVersion: 'v1', datasetDir: null, experiment: 'e', createdAt, updatedAt: createdAt, attemptStartedAt: null });

  test('jobs round-trip, page newest first, and refuse duplicates', async () => {
    for (let i = 0; i < 5; i++) await store.createJob(job(`t-aaaaaa${i}-00000${i}`, 1000 + i));
    await assert.rejects(store.createJob(job('t-aaaaaa0-000000', 1)), (e: any) => e.code === 'ALREADY_EXISTS');
    const first = await store.listJobs({ pageSize: 2 });
    assert.deepEqual(first.items.map((j) => j.createdAt), [1004, 1003]);
    const second = await store.listJobs({ pageSize: 2, pageToken: first.nextPageToken });
    assert.deepEqual(second.items.map((j) => j.createdAt), [1002, 1001]);
    const third = await store.listJobs({ pageSize: 2, pageToken: second.nextPageToken });
    assert.deepEqual(third.items.map((j) => j.createdAt), [1000]);
    assert.equal(third.nextPageToken, undefined);
    const got = await store.requireJob('t-aaaaaa1-000001');
    assert.deepEqual(got.request, { model: 'compact_cnn', hyperparameters: { epochs: 2 } });
    await assert.rejects(store.requireJob('t-nothere-000000'), (e: any) => e.code === 'NOT_FOUND');
    await assert.rejects(store.listJobs({ pageToken: 'garbage' }), (e: any) => e.code === 'INVALID_INPUT');
  });

  test('conditional updates only apply in the given states', async () => {
    const id = 't-aaaaaa2-000002';
    assert.equal(await store.updateJob(id, { state: 'running', lastCheckpoint: { epoch: 1, step: 0, path: '/x', attempt: 1 } }, ['queued']), true);
    assert.equal(await store.updateJob(id, { state: 'cancelled' }, ['queued']), false);
    const j = await store.requireJob(id);
    assert.equal(j.state, 'running');
    assert.deepEqual(j.lastCheckpoint, { epoch: 1, step: 0, path: '/x', attempt: 1 });
    const counts = await store.countJobs();
    assert.equal(counts.running, 1);
    assert.equal(counts.queued, 4);
    assert.equal(counts.succeeded, 0);
  });

  test('events get increasing sequence numbers; epochs are replaced by a later attempt', async () => {
    const id = 't-aaaaaa3-000003';
    assert.equal(await store.appendEvent(id, 1, 'started', { a: 1 }), 1);
    assert.equal(await store.appendEvent(id, 1, 'epoch', { epoch: 1 }), 2);
    const events = await store.listEvents(id, 1);
    assert.deepEqual(events.map((e) => [e.seq, e.event, e.data]), [[2, 'epoch', { epoch: 1 }]]);
    await store.putEpoch(id, 1, 1, { val_auc: 0.5 });
    await store.putEpoch(id, 2, 1, { val_auc: 0.6 });
    await store.putEpoch(id, 2, 2, { val_auc: 0.7 });
    const epochs = await store.listEpochs(id);
    assert.deepEqual(epochs.map((e) => [e.epoch, e.attempt, e.metrics.val_auc]), [[1, 1, 0.5], [2, 2, 0.7]]);
  });

  test('studies and trials', async () => {
    const now = Date.now();
    await store.createStudy({
      id: 's-aaaaaa1-000001',
      state: 'queued',
      datasetVersion: 'v',
      datasetDir: null,
      experiment: 'e',
      request: { model: 'compact_cnn', hyperparameters: {}, search_space: {}, n_trials: 2, pruner: 'median', concurrency: 1 },
      queueJobId: null,
      workerHost: null,
      workerPid: null,
      ownerPid: null,
      heartbeatAt: null,
      best: null,
      error: null,
      createdBy: 't',
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      finishedAt: null,
    });
    await store.putTrial('s-aaaaaa1-000001', 0, { state: 'running', params: { lr: 0.01 } });
    await store.putTrial('s-aaaaaa1-000001', 0, { history: [{ epoch: 1, val_auc: 0.7 }] });
    await store.putTrial('s-aaaaaa1-000001', 1, { state: 'pruned', prunedEpoch: 1, params: { lr: 0.1 } });
    const trials = await store.listTrials('s-aaaaaa1-000001');
    assert.deepEqual(trials.map((t) => [t.trial, t.state, t.params.lr, t.history.length]), [[0, 'running', 0.01, 1], [1, 'pruned', 0.1, 0]]);
    assert.equal(await store.updateStudy('s-aaaaaa1-000001', { state: 'running' }, ['queued']), true);
    assert.equal((await store.requireStudy('s-aaaaaa1-000001')).state, 'running');
  });
});
