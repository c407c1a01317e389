import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { modelCard } from '../../src/model-registry/routes/schemas.js';
import { buildModelCard, renderModelCardMarkdown } from '../../src/model-registry/service/model-card.js';
import type { ModelVersionRecord } from '../../src/model-registry/store/registry-store.js';

/** A registered version whose model.json is `metadata`; everything else as a bare upload. */
function version(metadata: Record<string, unknown>): ModelVersionRecord {
  return {
    name: 'pneumonia',
    version: 3,
    creation_timestamp: Date.UTC(2026, 0, 2),
    last_updated_timestamp: Date.UTC(2026, 0, 2),
    user_id: 'tester',
    current_stage: 'None',
    description: '',
    source: 'upload:sha256:0',
    run_id: null,
    run_link: null,
    status: 'READY',
    status_message: null,
    tags: [],
    aliases: [],
    deleted_at: null,
    onnx: null,
    input_name: 'input',
    input_size: 16,
    has_features: true,
    threshold: 0.4,
    threshold_method: 'youden',
    preprocessing: null,
    preprocessing_hash: null,
    dataset_version: 'dv-1',
    code_version: null,
    parent: null,
    val_auc: 0.9,
    metrics: { n: 20, positives: 12, auc: 0.9 },
    metadata,
    gate: null,
  };
}

const TRAINED_ON = { device: 'cuda', device_name: 'NVIDIA H100 80GB HBM3', processes: 2, threads: 8, torch: '2.3.0', amp: true };
const SHIFT = {
  protocol: 'Leave-file-family-out and later-period test splits built from the training data.',
  rows: [
    { candidate: 'baseline', split: 'family:NORMAL2', description: 'NORMAL2 | held out', n: 100, positives: 60, negatives: 40, auc: 0.91, auc_ci: [0.85, 0.95], sensitivity: 0.9, specificity: 0.7, threshold: 0.3, shipped: false },
    { candidate: 'crop+mixup', split: 'period:late', description: 'last 20% by name', n: 80, positives: 50, negatives: 30, auc: 0.93, auc_ci: null, sensitivity: 0.92, specificity: null, threshold: 0.25, shipped: true },
    { candidate: 'broken', n: 5 }, // no split: left out
    'not a row',
  ],
};
const TRIED = [
  { what: 'mixup 0.2', result: 'AUC +0.01 on the later period', kept: true },
  { what: 'input crop', result: 'specificity | fell', kept: false },
  { result: 'no what: left out', kept: true },
];

describe('model card: where it was trained, shift evidence, what was tried', () => {
  test('a version recording all three shows them in JSON, Markdown and through the route schema', () => {
    const card = buildModelCard(version({ trained_on: TRAINED_ON, card: { shift_evidence: SHIFT, tried: TRIED, trained_on: { device: 'cpu' } } }), 0);
    assert.deepEqual(card.training.trained_on, { ...TRAINED_ON, source: 'model.json' }, "the trainer's record wins over the card's");
    assert.equal(card.shift_evidence?.protocol, SHIFT.protocol);
    assert.deepEqual(
      card.shift_evidence?.rows.map((r) => [r.candidate, r.split, r.n, r.negatives, r.auc, r.auc_ci, r.shipped]),
      [
        ['baseline', 'family:NORMAL2', 100, 40, 0.91, [0.85, 0.95], false],
        ['crop+mixup', 'period:late', 80, 30, 0.93, null, true],
      ],
    );
    assert.deepEqual(card.tried, TRIED.slice(0, 2));
    // The response schema keeps every new field (a zod object would strip unknown keys on the way out).
    const wire = modelCard.parse(JSON.parse(JSON.stringify(card)));
    assert.deepEqual(wire.training.trained_on, card.training.trained_on);
    assert.deepEqual(wire.shift_evidence, card.shift_evidence);
    assert.deepEqual(wire.tried, card.tried);

    const md = renderModelCardMarkdown(card);
    assert.match(md, /- Where it was trained: cuda \(NVIDIA H100 80GB HBM3\), 2 processes, 8 threads, PyTorch 2\.3\.0, AMP on\n/);
    assert.match(md, /## Shift evidence\n\nLeave-file-family-out and later-period/);
    assert.match(md, /\| baseline \| family:NORMAL2 — NORMAL2 \\\| held out \| 100 \(60\/40\) \| 0\.910 \(0\.850–0\.950\) \| 0\.900 \| 0\.700 \| 0\.300 \|/);
    assert.match(md, /\| \*\*crop\+mixup\*\* \(shipped\) \| period:late — last 20% by name \| 80 \(50\/30\) \| 0\.930 \| 0\.920 \| n\/a \| 0\.250 \|/);
    assert.doesNotMatch(md, /broken/);
    assert.match(md, /## What was tried\n\n\| what \| result \| kept \|\n\|---\|---\|---\|\n\| mixup 0\.2 \| AUC \+0\.01 on the later period \| yes \|\n\| input crop \| specificity \\\| fell \| no \|\n\n/);
  });

  test('a version recording none says "not recorded"; card.trained_on is the fallback', () => {
    const card = buildModelCard(version({ card: { shift_evidence: 'odd', tried: { what: 'not a list' } } }), 0);
    assert.equal(card.training.trained_on, null);
    assert.equal(card.shift_evidence, null);
    assert.equal(card.tried, null);
    assert.doesNotThrow(() => modelCard.parse(JSON.parse(JSON.stringify(card))));
    const md = renderModelCardMarkdown(card);
    assert.match(md, /- Where it was trained: not recorded\n/);
    assert.match(md, /## Shift evidence\n\nNot recorded\.\n/);
    assert.match(md, /## What was tried\n\nNot recorded\.\n/);

    const bare = buildModelCard(version({}), 0);
    assert.deepEqual([bare.training.trained_on, bare.shift_evidence, bare.tried], [null, null, null]);

    const shipped = buildModelCard(version({ card: { trained_on: { device: 'cpu', device_name: 'cpu', processes: 1, threads: 2, torch: '1.13.0a0', amp: false } } }), 0);
    assert.equal(shipped.training.trained_on?.source, 'card');
    assert.match(renderModelCardMarkdown(shipped), /- Where it was trained: cpu, 1 process, 2 threads, PyTorch 1\.13\.0a0, AMP off \(from the card metadata\)\n/);
  });
});
