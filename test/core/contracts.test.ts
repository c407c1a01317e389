/**
 * Cross-language contracts have one source: the augmentation spec in src/core/ml/augmentation.ts is
 * what the data pipeline records, what the training API accepts, and (through the generated
 * trainer/augmentation.json) what the PyTorch worker validates.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CONTRACT_FILES } from '../../scripts/contracts.js';
import { AUGMENTATION_FIELDS, augmentationOverridesSchema, DEFAULT_AUGMENTATION } from '../../src/core/ml/augmentation.js';
import { parseAugmentationSpec } from '../../src/data-pipeline/service/augmentation.js';
import { augmentationSchema } from '../../src/training/routes/schemas.js';
import { MODEL_NAMES } from '../../src/training/service/model-names.js';
import { PROJECT_ROOT } from '../helpers/process.js';

test('the generated contract files are up to date (npm run contracts)', () => {
  for (const [file, render] of Object.entries(CONTRACT_FILES)) {
    assert.equal(readFileSync(path.join(PROJECT_ROOT, file), 'utf8'), render(), `${file} is stale: run npm run contracts`);
  }
});

test('the worker builds exactly the model names the training API offers', () => {
  const python = ['/usr/bin/python3', 'python3'].find((p) => p === 'python3' || existsSync(p))!;
  const r = spawnSync(python, ['-c', 'import json; from trainer.protocol import MODEL_NAMES; print(json.dumps(list(MODEL_NAMES)))'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [...MODEL_NAMES]);
});

test('the data pipeline, the training API and the PyTorch worker accept and refuse the same augmentation specs', () => {
  assert.equal(augmentationSchema, augmentationOverridesSchema, 'the training API uses the one schema');
  // Cases at and just past every limit, plus the defaults and an unknown field.
  const cases: Record<string, unknown>[] = [{}, { ...DEFAULT_AUGMENTATION }, { vflip: true }];
  for (const [name, f] of Object.entries(AUGMENTATION_FIELDS)) {
    if (f.kind === 'boolean') cases.push({ [name]: !f.default }, { [name]: 1 });
    else if (f.kind === 'number') cases.push({ [name]: f.min }, { [name]: f.max }, { [name]: f.max + 1e-6 }, { [name]: f.min - 1e-6 });
    else cases.push({ [name]: [f.min, f.max] }, { [name]: [f.min - 1e-6, f.max] }, { [name]: [f.min, f.max + 1e-6] }, { [name]: [f.max, f.min] });
  }
  const ts = cases.map((c) => {
    try {
      parseAugmentationSpec(c);
      return true;
    } catch {
      return false;
    }
  });
  assert.deepEqual(ts, cases.map((c) => augmentationOverridesSchema.safeParse(c).success), 'data pipeline = training API');

  const python = ['/usr/bin/python3', 'python3'].find((p) => p === 'python3' || existsSync(p))!;
  const script = [
    'import json, sys',
    'from trainer.protocol import validate_augmentation, SpecError, DEFAULT_AUGMENTATION',
    'out = []',
    'for case in json.load(sys.stdin):',
    '    try:',
    '        validate_augmentation(case)',
    '        out.append(True)',
    '    except SpecError:',
    '        out.append(False)',
    'print(json.dumps({"verdicts": out, "defaults": DEFAULT_AUGMENTATION}))',
  ].join('\n');
  const r = spawnSync(python, ['-c', script], { cwd: PROJECT_ROOT, input: JSON.stringify(cases), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const py = JSON.parse(r.stdout) as { verdicts: boolean[]; defaults: unknown };
  assert.deepEqual(py.defaults, DEFAULT_AUGMENTATION, 'the worker has the same defaults');
  const disagreements = cases.flatMap((c, i) => (py.verdicts[i] === ts[i] ? [] : [`${JSON.stringify(c)}: ts ${ts[i]} python ${py.verdicts[i]}`]));
  assert.deepEqual(disagreements, [], 'the worker agrees on every case');
  assert.ok(ts.includes(true) && ts.includes(false), 'the cases exercise both verdicts');
});
