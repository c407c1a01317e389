import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { testConfig } from '../../src/core/config/index.js';
import { generateDataset } from '../../src/core/imaging/index.js';
import { evaluateCommand } from '../../src/cli/commands/evaluate.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';
import { torchOrSkip } from '../training/helpers.js';
import { api, PER_CLASS, runPipeline } from './pipeline-scenario.js';

/** The pipeline (pipeline-scenario.ts) on a platform started in-process (embedded), behind its gateway. */
describe('end to end: import → version → train → register → promote → predict → drift → explain → audit', { skip: process.env.XRAY_FAST === '1' ? 'XRAY_FAST=1 (real training)' : false }, () => {
  let home: string;
  let running: RunningPlatform;

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-e2e-'));
    await generateDataset(path.join(home, 'incoming', 'chest_xray'), { perClass: PER_CLASS, seed: 21, size: 64, format: 'png', imagesPerPatient: [1, 2] });
    running = await startPlatform({
      config: testConfig(home, { XRAY_IMPORT_ROOT: home, XRAY_WEB_DIR: path.join(home, 'no-web'), XRAY_TRAINER_CONCURRENCY: '1' }),
      randomPorts: true,
      gateway: true,
    });
  });
  after(async () => {
    await running?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('the pipeline runs through the platform APIs', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const { versionId, job } = await runPipeline(api((service) => `${running.urls.gateway}/api/${service}`));

    // 8. xray evaluate (through the gateway) on the validation split reproduces the metrics the trainer recorded (same images, same model).
    const { result } = await evaluateCommand({ model: { kind: 'registry', name: 'pneumonia', ref: 'production' }, source: { kind: 'dataset', version: versionId, split: 'val' }, bootstrap: 0 }, [], { baseUrl: running.urls.gateway });
    const evaluated = result.report;
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
