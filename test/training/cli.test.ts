import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT, testConfig } from '../../src/core/config/index.js';
import { startPlatform } from '../../src/main.js';
import { torchOrSkip, writeExport } from './helpers.js';

function xray(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'src/cli/index.ts'), ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('xray train --follow trains through the gateway and prints each epoch and the result', async (t) => {
  if (!(await torchOrSkip(t))) return;
  const home = mkdtempSync(path.join(tmpdir(), 'xray-train-cli-'));
  const running = await startPlatform({
    config: testConfig(home, { XRAY_IMPORT_ROOT: home, XRAY_HOST: '127.0.0.1', XRAY_WEB_DIR: path.join(home, 'no-web') }),
    services: ['training'],
    gateway: true,
    randomPorts: true,
  });
  t.after(async () => {
    await running.close();
    rmSync(home, { recursive: true, force: true });
  });
  const env = { XRAY_URL: running.urls.gateway! };
  const dir = await writeExport(path.join(home, 'ds'), { train: 12, val: 6 });

  const run = await xray(
    ['train', '--dataset-dir', dir, '--epochs', '2', '--batch-size', '4', '--max-train-batches', '2', '--input-size', '32', '--patience', 'none', '--no-onnx', '--follow'],
    env,
  );
  assert.equal(run.code, 0, run.stderr + run.stdout);
  assert.match(run.stdout, /started on cpu/);
  assert.match(run.stdout, /epoch 1\/2 .*val_auc/);
  assert.match(run.stdout, /epoch 2\/2 /);
  assert.match(run.stdout, /evaluation val: auc/);
  const id = /job (t-[a-z0-9]+-[a-f0-9]+): succeeded/.exec(run.stdout)?.[1];
  assert.ok(id, run.stdout);

  const status = await xray(['train', 'status', id, '--json'], env);
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).state, 'succeeded');

  const cancel = await xray(['train', 'cancel', id], env);
  assert.equal(cancel.code, 1);
  assert.match(cancel.stderr, /already succeeded/);

  const bad = await xray(['train', '--epochs', '2'], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--dataset/);
});
