import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../src/core/config/index.js';
import { AppError } from '../../src/core/errors.js';
import { findPython, INSTALL_COMMAND, LocalProcessRunner, type TrainerEvent } from '../../src/training/runner/index.js';
import { buildJobSpec } from '../../src/training/service/spec.js';
import { torchOrSkip, writeExport } from './helpers.js';

const python = process.env.XRAY_PYTHON ?? '';

describe('LocalProcessRunner with the real worker', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'xray-runner-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a missing interpreter is TRAINER_RUNTIME_MISSING with the install command', async () => {
    await assert.rejects(findPython('/nonexistent/bin/python3'), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'TRAINER_RUNTIME_MISSING');
      assert.equal(err.status, 503);
      assert.ok(err.message.includes(INSTALL_COMMAND), err.message);
      return true;
    });
  });

  test('the specs the service builds pass the worker\'s own validation', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const runner = new LocalProcessRunner({ python, cwd: PROJECT_ROOT });
    const spec = buildJobSpec(
      { model: 'efficientnet_b0', input_size: 224, seed: 3, hyperparameters: { epochs: 3, batch_size: 16, lr: 0.001, early_stopping_patience: null }, augmentation: { hflip: true }, threshold: { method: 'sensitivity', target_sensitivity: 0.9 }, export: { opset: 13 } },
      { jobId: 't-x', datasetDir: '/d', outputDir: '/o', threads: 2 },
    );
    // Spec validation comes first in the worker, so failing on the (missing) dataset proves the spec passed.
    const handle = await runner.start({ command: 'run', spec, specPath: path.join(dir, 'spec.json'), threads: 1 });
    const events: TrainerEvent[] = [];
    for await (const e of handle.events) events.push(e);
    const failed = events.find((e) => e.event === 'failed');
    assert.ok(failed && failed.event === 'failed');
    assert.equal(failed.error_type, 'DatasetError', failed.reason);
    assert.match(failed.reason, /dataset export not found/);
    assert.equal((await handle.exit).code, 1);
  });

  test('a bad spec fails fast with the field named', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const runner = new LocalProcessRunner({ python, cwd: PROJECT_ROOT });
    const handle = await runner.start({ command: 'run', spec: { dataset_dir: '/d', output_dir: '/o', hyperparameters: { epoch: 3 } }, specPath: path.join(dir, 'bad.json'), threads: 1 });
    const events: TrainerEvent[] = [];
    for await (const e of handle.events) events.push(e);
    assert.equal(events.length, 1);
    assert.ok(events[0]!.event === 'failed' && /hyperparameters: unknown field\(s\) epoch/.test(events[0]!.reason));
  });

  test('a worker killed mid-run ends with a synthetic failed event: signal and stderr tail', async (t) => {
    if (!(await torchOrSkip(t))) return;
    const data = await writeExport(path.join(dir, 'ds'), { train: 12, val: 6 });
    const runner = new LocalProcessRunner({ python, cwd: PROJECT_ROOT });
    const spec = buildJobSpec({ model: 'compact_cnn', input_size: 32, hyperparameters: { epochs: 50, batch_size: 4, warmup_epochs: 0 }, export: { onnx: false } }, { jobId: 't-k', datasetDir: data, outputDir: path.join(dir, 'out'), threads: 1 });
    const log = path.join(dir, 'worker.log');
    const handle = await runner.start({ command: 'run', spec, specPath: path.join(dir, 'k.json'), logPath: log, threads: 1 });
    assert.ok(handle.pid && handle.pid > 0);
    const events: TrainerEvent[] = [];
    for await (const e of handle.events) {
      events.push(e);
      if (e.event === 'started') handle.kill();
    }
    const last = events.at(-1)!;
    assert.ok(last.event === 'failed', JSON.stringify(last));
    assert.equal(last.error_type, 'WorkerDied');
    assert.equal(last.signal, 'SIGKILL');
    assert.match(last.reason, /killed by SIGKILL/);
    assert.deepEqual(await handle.exit, { code: null, signal: 'SIGKILL' });
  });
});
