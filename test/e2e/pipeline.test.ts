import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { testConfig } from '../../src/core/config/index.js';
import { generateChestXray, generateDataset } from '../../src/core/imaging/index.js';
import { evaluateModel } from '../../src/cli/evaluation.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';
import { torchOrSkip } from '../training/helpers.js';

/**
 * The whole pipeline, small and fast, through the HTTP APIs of a platform started in-process
 * behind its gateway: synthetic X-rays → folder import → dataset version (patient split) →
 * training (real PyTorch worker, 1 epoch) → registration → promotion → the deployment service
 * follows the production alias → /predict with a heatmap → drift report → audit trail.
 */

const PER_CLASS = 20;
const INPUT = 32;

interface Api {
  get<T = any>(path: string): Promise<T>;
  post<T = any>(path: string, body: unknown, expect?: number | number[]): Promise<T>;
  raw(path: string, init?: RequestInit): Promise<Response>;
}

function api(base: string): Api {
  const raw = (p: string, init?: RequestInit) => fetch(`${base}/api${p}`, init);
  const check = async (res: Response, expect: number[], what: string) => {
    const text = await res.text();
    assert.ok(expect.includes(res.status), `${what}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    raw,
    async get(p) {
      return check(await raw(p), [200], `GET ${p}`);
    },
    async post(p, body, expect = [200, 201, 202]) {
      const res = await raw(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return check(res, Array.isArray(expect) ? expect : [expect], `POST ${p}`);
    },
  };
}

async function poll<T>(what: string, fn: () => Promise<T | null>, timeoutMs: number, every = 200): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    const value = await fn().catch((err: unknown) => {
      last = err;
      return null;
    });
    if (value !== null) return value;
    if (Date.now() > until) throw new Error(`${what}: not done after ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

describe('end to end: import → version → train → register → promote → predict → drift → audit', { skip: process.env.XRAY_FAST === '1' ? 'XRAY_FAST=1 (real training)' : false }, () => {
  let home: string;
  let running: RunningPlatform;
  let http: Api;
  const state: { versionId?: string; jobId?: string; modelVersion?: number; predictionIds: string[] } = { predictionIds: [] };

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-e2e-'));
    await generateDataset(path.join(home, 'incoming', 'chest_xray'), { perClass: PER_CLASS, seed: 21, size: 64, format: 'png', imagesPerPatient: [1, 2] });
    running = await startPlatform({
      config: testConfig(home, { XRAY_IMPORT_ROOT: home, XRAY_WEB_DIR: path.join(home, 'no-web'), XRAY_TRAINER_CONCURRENCY: '1' }),
      randomPorts: true,
      gateway: true,
    });
    http = api(running.urls.gateway!);
  });
  after(async () => {
    await running?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('the pipeline runs through the platform APIs', async (t) => {
    if (!(await torchOrSkip(t))) return;

    // 1. Import the folder (server side, under the import root) and version it with a patient split.
    const { job_id: importId } = await http.post('/data-pipeline/import', { path: 'incoming/chest_xray' }, 202);
    const imported = await poll('import', async () => {
      const s = await http.get(`/data-pipeline/import/${importId}`);
      if (s.state === 'failed') throw new Error(`import failed: ${s.error}`);
      return s.state === 'completed' ? s : null;
    }, 60_000);
    assert.equal(imported.ingested, 2 * PER_CLASS, JSON.stringify(imported));
    const created = await http.post('/data-pipeline/version/create', { name: 'e2e', val_fraction: 0.3, test_fraction: 0, seed: 5, preprocessing: { size: INPUT, mode: 'letterbox' } }, 201);
    const version = created.version;
    state.versionId = version.id;
    assert.ok(version.counts.val.NORMAL > 0 && version.counts.val.PNEUMONIA > 0, JSON.stringify(version.counts));
    const manifest = await http.get(`/data-pipeline/versions/${version.id}/manifest`);
    const splitOf = new Map<string, Set<string>>();
    for (const item of manifest.items) {
      if (!splitOf.has(item.patient)) splitOf.set(item.patient, new Set());
      splitOf.get(item.patient)!.add(item.split);
    }
    assert.ok([...splitOf.values()].every((s) => s.size === 1), 'no patient is in two splits');

    // 2. Train a tiny compact CNN for one epoch with the real worker.
    const submitted = await http.post(
      '/training/train',
      {
        dataset_version: version.id,
        model: 'compact_cnn',
        input_size: INPUT,
        seed: 3,
        experiment: 'e2e',
        hyperparameters: { epochs: 1, batch_size: 8, max_train_batches: 3, warmup_epochs: 0, early_stopping_patience: null, lr: 0.003 },
      },
      202,
    );
    state.jobId = submitted.job_id;
    const job = await poll('training', async () => {
      const j = await http.get(`/training/train/${submitted.job_id}`);
      return ['succeeded', 'failed', 'cancelled', 'interrupted'].includes(j.state) ? j : null;
    }, 150_000, 500);
    assert.equal(job.state, 'succeeded', job.error);
    assert.ok(job.metrics && typeof job.metrics.auc === 'number');
    assert.ok(job.artifacts.onnx, 'an ONNX export');

    // 3. Register through the training service, promote through the registry.
    const reg = await http.post(`/training/train/${submitted.job_id}/register`, { name: 'pneumonia' }, 201);
    state.modelVersion = reg.registered.version;
    assert.equal(state.modelVersion, 1);
    const promoted = await http.post('/model-registry/models/pneumonia/stage', { version: state.modelVersion, stage: 'Production' }, 200);
    assert.equal(promoted.model_version.stage, 'Production');
    assert.equal(promoted.gate.passed, true, JSON.stringify(promoted.gate));

    // 4. The deployment service follows the production alias and loads it.
    await poll('deployment loads the promoted version', async () => {
      const { models } = await http.get('/deployment/models');
      return models.some((m: any) => m.name === 'pneumonia' && m.version === String(state.modelVersion) && m.alias === 'production') ? true : null;
    }, 30_000);

    // 5. Predictions with a heatmap: 8 like the training data (reference), 8 darker (current window).
    const predict = async (image: Buffer) => {
      const res = await http.raw('/deployment/predict?heatmap=inline', { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(image) });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      return body;
    };
    for (let i = 0; i < 16; i++) {
      const image = await generateChestXray({ seed: `e2e-${i}`, size: 96, pneumonia: i % 2 === 1, ...(i >= 8 ? { exposure: 0.6 } : {}) });
      const p = await predict(image);
      assert.deepEqual(p.model, { name: 'pneumonia', version: String(state.modelVersion) });
      assert.ok(p.probability >= 0 && p.probability <= 1);
      assert.ok(['NORMAL', 'PNEUMONIA'].includes(p.label));
      assert.equal(p.label, p.probability >= p.threshold ? 'PNEUMONIA' : 'NORMAL');
      assert.equal(p.heatmap_method, 'cam');
      if (i === 0) {
        const png = Buffer.from(p.heatmap_png_base64, 'base64');
        const meta = await sharp(png).metadata();
        assert.equal(meta.format, 'png');
        const viaUrl = await http.raw(p.heatmap_url.replace(/^\/api/, ''));
        assert.equal(viaUrl.status, 200);
        assert.equal(viaUrl.headers.get('content-type'), 'image/png');
      }
      state.predictionIds.push(p.prediction_id);
    }
    // Reading one record back flushes the recorder's buffer to the database.
    await http.get(`/deployment/predictions/${state.predictionIds.at(-1)}`);

    // 6. Drift: a reference from the first 8 recorded predictions, the last 8 as the current window.
    const reference = await http.post('/monitoring/drift/reference', { model: 'pneumonia', version: String(state.modelVersion), prediction_ids: state.predictionIds.slice(0, 8) }, 201);
    assert.equal(reference.n_rows, 8);
    const report = await http.post('/monitoring/drift/detect', { model: 'pneumonia', version: String(state.modelVersion), reference_id: reference.id, window: { last_n: 8 }, options: { min_rows: 5 } }, 200);
    assert.equal(report.n_reference, 8);
    assert.equal(report.n_current, 8);
    assert.ok(['drift', 'no_drift'].includes(report.verdict), report.verdict);
    assert.ok(report.checks.length > 0 && report.features.length > 0);
    const stored = await http.get('/monitoring/drift/reports?model=pneumonia');
    assert.ok(stored.items.some((r: any) => r.id === report.id));

    // 7. The audit trail holds every step.
    const audit: { action: string; resource: string; outcome: string; details: any }[] = [];
    let token = '';
    do {
      const page = await http.get(`/monitoring/audit?page_size=1000${token ? `&page_token=${token}` : ''}`);
      audit.push(...page.items);
      token = page.next_page_token ?? '';
    } while (token);
    const has = (action: string, resource: string) => audit.find((a) => a.action === action && a.resource === resource && a.outcome === 'success');
    assert.equal(has('data.import', `import:${importId}`)?.details.ingested, 2 * PER_CLASS, 'ingest');
    assert.ok(has('data.version.create', `dataset:${version.id}`), 'dataset version');
    assert.ok(has('training.start', `training-job:${submitted.job_id}`), 'training start');
    assert.ok(has('training.finish', `training-job:${submitted.job_id}`), 'training finish');
    assert.ok(has('model.register', `model:pneumonia/${state.modelVersion}`), 'registration');
    assert.ok(has('model.stage', `model:pneumonia/${state.modelVersion}`), 'promotion');
    const predicted = new Set(audit.filter((a) => a.action === 'prediction.create').map((a) => a.resource));
    assert.ok(state.predictionIds.every((id) => predicted.has(`prediction:${id}`)), 'every prediction');
    assert.ok(audit.some((a) => a.action === 'drift.check'), 'drift check');

    // 8. xray evaluate on the validation split reproduces the metrics the trainer recorded (same images, same model).
    const { report: evaluated } = await evaluateModel(running.platform, { model: { kind: 'registry', name: 'pneumonia', ref: 'production' }, source: { kind: 'dataset', version: version.id, split: 'val' }, bootstrap: 0 });
    assert.equal(evaluated.n, job.metrics.n);
    assert.equal(evaluated.threshold, job.threshold);
    assert.ok(Math.abs(evaluated.auc! - job.metrics.auc) < 1e-3, `evaluate AUC ${evaluated.auc} vs trainer ${job.metrics.auc}`);
    // The stored threshold is one of the trainer's (PyTorch) validation scores; ONNX Runtime may
    // differ from it in the 7th digit, which can move that one image across the threshold.
    const c = evaluated.confusion;
    const k = job.metrics.confusion;
    const moved = Math.abs(c.tp - k.tp) + Math.abs(c.fp - k.fp) + Math.abs(c.tn - k.tn) + Math.abs(c.fn - k.fn);
    assert.ok(moved <= 2, `confusion ${JSON.stringify(c)} vs trainer ${JSON.stringify(k)}`);
  });
});
