/**
 * Runs the Python trainer's own suite (trainer/tests) with the interpreter that has torch.
 * XRAY_PYTHON picks the interpreter (default /usr/bin/python3). Without a usable interpreter the
 * test skips loudly, except under CI, where a missing trainer runtime is a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PYTHON = process.env.XRAY_PYTHON ?? '/usr/bin/python3';
const REQUIRED_MODULES = 'torch, torchvision, numpy, PIL, optuna, onnx, pytest';

function missingRuntime(): string | null {
  const probe = spawnSync(PYTHON, ['-c', `import ${REQUIRED_MODULES}`], { encoding: 'utf8', timeout: 120_000 });
  if (probe.error) return `${PYTHON} cannot be started: ${probe.error.message}`;
  if (probe.status !== 0) return `${PYTHON} lacks one of ${REQUIRED_MODULES}: ${probe.stderr.trim().split('\n').pop()}`;
  return null;
}

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

test('the Python trainer suite passes (pytest trainer/tests)', { timeout: 600_000 }, async (t) => {
  const missing = missingRuntime();
  if (missing) {
    const message = `TRAINER TESTS NOT RUN: ${missing}. Install python3-torch, python3-torchvision, ` +
      'python3-optuna, python3-onnx, python3-pytest, python3-pil or set XRAY_PYTHON.';
    if (process.env.CI) assert.fail(message);
    console.warn(`\n${'!'.repeat(80)}\n${message}\n${'!'.repeat(80)}\n`);
    t.skip(message);
    return;
  }
  const { code, output } = await run(PYTHON, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'trainer/tests']);
  assert.equal(code, 0, `pytest failed (exit ${code}):\n${output}`);
});
