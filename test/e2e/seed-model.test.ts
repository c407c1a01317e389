import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { testConfig } from '../../src/core/config/index.js';
import { generateChestXray } from '../../src/core/imaging/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { buildDeploymentApp } from '../../src/deployment/app.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { seedDefaultModel } from '../../src/model-registry/service/seed-model.js';
import { registryReferenceLoader } from '../../src/monitoring/service/registry-references.js';
import { provideLocalClients } from '../helpers/service-harness.js';
import { PROJECT_ROOT } from '../helpers/process.js';

const TINY_MODEL = path.resolve(import.meta.dirname, '../fixtures/tiny-model.onnx');

/** What the training session ships, in miniature: the fixture model with a model.json, card and reference. */
function writeShippedModel(modelsDir: string, meta: Record<string, unknown> | string = {}): string {
  const dir = path.join(modelsDir, 'pneumonia');
  mkdirSync(dir, { recursive: true });
  copyFileSync(TINY_MODEL, path.join(dir, 'model.onnx'));
  const modelJson = {
    model_name: 'compact_cnn',
    input_size: 16,
    threshold: 0.42,
    threshold_method: 'youden',
    dataset_version: 'dv-shipped',
    metrics: { n: 100, positives: 70, auc: 0.93, auc_ci: [0.9, 0.96], sensitivity: 0.95, specificity: 0.85, threshold: 0.42 },
    class_counts: { train: { NORMAL: 20, PNEUMONIA: 60 }, val: { NORMAL: 5, PNEUMONIA: 15 } },
    card: { data_source: 'Kermany et al. 2018 (train split)', licence: 'CC BY 4.0' },
  };
  writeFileSync(path.join(dir, 'model.json'), typeof meta === 'string' ? meta : JSON.stringify({ ...modelJson, ...meta }));
  writeFileSync(path.join(dir, 'model-card.md'), '# Model card: pneumonia (shipped)\n');
  writeFileSync(path.join(dir, 'reference.json'), JSON.stringify({ stats: [{ mean: 0.4, std: 0.2 }, { mean: 0.45, std: 0.21 }], probabilities: [0.2, 0.8], threshold: 0.42 }));
  // The shipped model's lung-field report has this shape (models/pneumonia/lung-fields.json).
  const shipped = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'models/pneumonia/lung-fields.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(path.join(dir, 'lung-fields.json'), JSON.stringify({ ...shipped, dataset_version: 'dv-shipped', mean_inside: 0.16 }));
  return dir;
}

function captureLogs(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream) as unknown as Logger, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('the shipped default model is seeded on the first start', () => {
  let home: string;
  let platform: Platform;
  let registry: ModelRegistryService;
  let modelsDir: string;

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-seed-'));
    modelsDir = path.join(home, 'project-models');
    writeShippedModel(modelsDir);
    platform = await openPlatform(testConfig(home, { XRAY_SEED_MODEL: 'on' }));
    provideLocalClients(platform);
    registry = new ModelRegistryService(platform);
  });
  after(async () => {
    await platform?.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('registers v1 with its metadata and artifacts, in Production, as actor system', async () => {
    const result = await seedDefaultModel(platform, { modelsDir });
    assert.deepEqual(result, { status: 'seeded', name: 'pneumonia', version: 1 });
    const v = await registry.resolve('pneumonia', 'production');
    assert.equal(v.version, 1);
    assert.equal(v.current_stage, 'Production');
    assert.equal(v.threshold, 0.42);
    assert.equal(v.threshold_method, 'youden');
    assert.equal(v.val_auc, 0.93);
    assert.equal(v.dataset_version, 'dv-shipped');
    assert.equal(v.input_size, 16);
    assert.equal(v.user_id, 'system');
    assert.equal(v.gate?.forced, false, 'the gate passed on its own (validation AUC recorded, no production yet)');
    assert.equal((await registry.getArtifact('pneumonia', 1, 'model-card.md')).data.toString(), '# Model card: pneumonia (shipped)\n');
    const card = await registry.card('pneumonia', 1);
    assert.equal(card.data.licence, 'CC BY 4.0');
    assert.deepEqual(card.data.counts_per_class?.val, { NORMAL: 5, PNEUMONIA: 15 });
    // The lung-field report shipped with the model is on the card from the first start, with its warning.
    assert.equal(card.heatmap_location?.dataset_version, 'dv-shipped');
    assert.equal(card.heatmap_location?.mean_inside, 0.16);
    assert.ok(card.limitations.some((l) => /only 16% of the heatmap mass falls inside the lung fields/.test(l)), card.limitations.join('\n'));
    // Monitoring finds the drift reference the model shipped with.
    const reference = (await registryReferenceLoader(platform)('pneumonia', '1')) as { probabilities: number[] };
    assert.deepEqual(reference.probabilities, [0.2, 0.8]);

    await platform.audit.flush();
    const audit = (await platform.audit.query({ actor: 'system' })).items.map((a) => `${a.action} ${a.resource} ${a.outcome}`);
    assert.ok(audit.includes('model.register model:pneumonia/1 success'), String(audit));
    assert.ok(audit.includes('model.stage model:pneumonia/1 success'), String(audit));
  });

  test('the deployment service serves it at once: /predict answers with v1 at the stored threshold', async () => {
    const app = await buildDeploymentApp(platform);
    try {
      let body: any = null;
      for (let i = 0; i < 400 && !body; i++) {
        const res = await app.inject({ method: 'POST', url: '/predict', payload: await generateChestXray({ seed: 1, size: 64 }), headers: { 'content-type': 'image/png' } });
        if (res.statusCode === 200) body = res.json();
        else await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(body, 'the seeded model was loaded');
      assert.deepEqual(body.model, { name: 'pneumonia', version: '1' });
      assert.equal(body.threshold, 0.42);
      assert.ok(body.probability > 0 && body.probability < 1);
    } finally {
      await app.close();
    }
  });

  test('idempotent: a second start changes nothing', async () => {
    await platform.audit.flush();
    const before = (await platform.audit.query({ pageSize: 1000 })).items.length;
    assert.deepEqual(await seedDefaultModel(platform, { modelsDir }), { status: 'exists', name: 'pneumonia' });
    await platform.audit.flush();
    assert.equal((await platform.audit.query({ pageSize: 1000 })).items.length, before);
    assert.equal((await registry.getModel('pneumonia')).versions.length, 1);
  });

  test('absent file: one info line, nothing registered; switched off: skipped', async () => {
    const other = mkdtempSync(path.join(tmpdir(), 'xray-seed-absent-'));
    const logs = captureLogs();
    const p = await openPlatform(testConfig(other, { XRAY_SEED_MODEL: 'on' }), { logger: logs.logger });
    try {
      const result = await seedDefaultModel(p, { modelsDir: path.join(other, 'nothing-here') });
      assert.equal(result.status, 'absent');
      const lines = logs.lines().filter((l) => /shipped model/.test(String(l.msg)));
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!.level, 30, 'info');
      await assert.rejects(new ModelRegistryService(p).registry.getRegisteredModel('pneumonia'), /not found|does not exist/i);

      const off = { ...p, config: { ...p.config, seedModel: false } } as Platform;
      assert.equal((await seedDefaultModel(off, { modelsDir })).status, 'skipped');
    } finally {
      await p.close();
      rmSync(other, { recursive: true, force: true });
    }
  });

  test('a malformed model.json is refused before anything is registered', async () => {
    const other = mkdtempSync(path.join(tmpdir(), 'xray-seed-bad-'));
    const dir = path.join(other, 'models');
    writeShippedModel(dir, '{ not json');
    const p = await openPlatform(testConfig(other, { XRAY_SEED_MODEL: 'on' }));
    try {
      await assert.rejects(seedDefaultModel(p, { modelsDir: dir }), /model\.json is not a JSON object/);
      await assert.rejects(new ModelRegistryService(p).registry.getRegisteredModel('pneumonia'));
      assert.ok(readFileSync(path.join(dir, 'pneumonia', 'model.onnx')).length > 0);
    } finally {
      await p.close();
      rmSync(other, { recursive: true, force: true });
    }
  });
});
