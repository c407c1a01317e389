import assert from 'node:assert/strict';
import sharp from 'sharp';
import { generateChestXray } from '../../src/core/imaging/index.js';
import { jsonApi, poll, type JsonApi } from '../helpers/json-api.js';

/**
 * The whole pipeline, small and fast, through the platform's HTTP APIs: synthetic X-rays → folder
 * import → dataset version (patient split) → training (real PyTorch worker, 1 epoch) → registration
 * → promotion → the deployment follows the production alias → /predict with a heatmap → drift
 * report → explanation → audit trail. Run embedded (pipeline.test.ts) and with every service in its
 * own process over HTTP (split-services.test.ts).
 */

export const PER_CLASS = 20;
const INPUT = 32;

export type Api = JsonApi;

/** The APIs by '/<service>/<path>': `urlOf(service)` is the gateway's /api/<service> or the service itself. */
export function api(urlOf: (service: string) => string): Api {
  return jsonApi((p, init) => {
    const [, service, ...rest] = p.split('/');
    return fetch(`${urlOf(service!)}/${rest.join('/')}`, init);
  });
}

export interface PipelineResult {
  versionId: string;
  job: any;
  modelVersion: number;
  predictionIds: string[];
}

/** Runs the pipeline; the dataset is the folder `incoming/chest_xray` under the data pipeline's import root. */
export async function runPipeline(http: Api): Promise<PipelineResult> {
  const state: { versionId?: string; jobId?: string; modelVersion?: number; predictionIds: string[] } = { predictionIds: [] };

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
      // Through the gateway the URL carries its /api/deployment prefix; from the service itself it is the service's own path.
      const viaUrl = await http.raw(p.heatmap_url.startsWith('/api/') ? p.heatmap_url.slice('/api'.length) : `/deployment${p.heatmap_url}`);
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


  // 7b. An explanation of a logged prediction, asked of monitoring, computed by the deployment's data plane.
  const explained = await http.post('/monitoring/explain', { prediction_id: state.predictionIds[0], patch: 8 }, 200);
  assert.equal(explained.prediction_id, state.predictionIds[0]);
  assert.equal(explained.heatmap.grid.length, explained.heatmap.h * explained.heatmap.w);
  assert.ok(explained.occlusion.grid.length > 0 && ['high', 'moderate', 'low', 'undefined'].includes(explained.agreement.level));

  return { versionId: version.id, job, modelVersion: state.modelVersion!, predictionIds: state.predictionIds };
}
