/**
 * Each drift detector fires on a shifted synthetic set and stays quiet on a same-distribution
 * split; false-positive rates are measured over repeated seeded trials and bounded.
 *
 * Stated rates (deterministic seeds; re-measured each run):
 * - dataset drift on image statistics, 40 random 80/80 splits of 160 rendered images: ≤ 10 %
 *   (measured 0/40)
 * - MMD (α = 0.05, 100 permutations), 20 trials of 150 vs 150 embeddings: ≤ 15 % (measured 0/20)
 * - domain classifier (AUC > 0.55, 5-fold), same 20 trials: ≤ 20 % — at 150 rows per side the
 *   cross-validated AUC has a standard deviation of about 0.035, so Evidently's 0.55 cut-off
 *   alone gives roughly 5–10 % false alarms on windows this small (measured 3/30 in development)
 * - prediction drift (positive-rate z-test or probability KS, α = 0.05 each), 100 trials of
 *   300 vs 300: ≤ 15 % (measured 10/100: two tests at 5 % each)
 * - prediction drift (positive-rate z-test or probability KS, α = 0.05 each), 100 trials of 300 vs 300: ≤ 15 %
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { computeDrift, computeDriftStep, type DriftOptions, type DriftSide } from '../../src/monitoring/service/drift-compute.js';
import { driftOptionsFrom } from '../../src/monitoring/service/drift-service.js';
import { monitoringSettings } from '../../src/monitoring/settings.js';
import { flattenStats } from '../../src/monitoring/store/prediction-source.js';
import type { StatsRow } from '../../src/monitoring/store/types.js';
import { embeddings, labelsWithRate, probabilities, renderedStats, Rng } from './helpers.js';

const OPTIONS: DriftOptions = { ...driftOptionsFrom(monitoringSettings()), mmdPermutations: 100 };

function side(stats: StatsRow[], emb: number[][] = [], probs: number[] = []): DriftSide {
  return { stats, embeddings: emb, probabilities: probs, threshold: 0.5 };
}

const check = (checks: { detector: string; drifted: boolean; skipped?: string }[], detector: string) => {
  const c = checks.find((x) => x.detector === detector);
  assert.ok(c, `no ${detector} check`);
  assert.equal(c.skipped, undefined, `${detector} skipped: ${c.skipped}`);
  return c;
};

describe('data drift on per-image statistics', () => {
  const reference = renderedStats(0, 80).map((s) => flattenStats(s));
  const same = renderedStats(1000, 80).map((s) => flattenStats(s));

  test('quiet on new images from the same generator', () => {
    const r = computeDriftStep('data', side(reference), side(same), OPTIONS, 's');
    assert.equal(check(r.checks, 'data').drifted, false);
    assert.ok(r.features.every((f) => f.method === 'ks'), 'a reference of ≤ 1000 rows uses KS');
    assert.ok(r.features.some((f) => f.feature === 'mean') && r.features.every((f) => Number.isFinite(f.psi)));
  });

  test('fires on inverted images (MONOCHROME1 exported as MONOCHROME2)', () => {
    const inverted = renderedStats(1000, 80, { invert: true }).map((s) => flattenStats(s));
    const r = computeDriftStep('data', side(reference), side(inverted), OPTIONS, 's');
    assert.equal(check(r.checks, 'data').drifted, true);
    const mean = r.features.find((f) => f.feature === 'mean')!;
    assert.ok(mean.drifted && mean.p_value! < 1e-6 && mean.psi > 0.25, JSON.stringify(mean));
    // The report carries the distributions the UI draws: shares per reference-decile bin.
    assert.equal(mean.histogram!.reference.length, mean.histogram!.edges.length + 1);
    assert.equal(mean.histogram!.current.length, mean.histogram!.reference.length);
    assert.ok(Math.abs(mean.histogram!.current.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  });

  test('fires on over-exposed images (+1 stop)', () => {
    const bright = renderedStats(1000, 80, { exposure: 1 }).map((s) => flattenStats(s));
    const r = computeDriftStep('data', side(reference), side(bright), OPTIONS, 's');
    assert.equal(check(r.checks, 'data').drifted, true);
    assert.ok(r.features.find((f) => f.feature === 'clipHighFrac')!.drifted);
  });

  test('normed Wasserstein above 1000 reference rows', () => {
    const rng = new Rng('wasserstein');
    const rows = (n: number, shift: number) => Array.from({ length: n }, () => ({ a: rng.normal(shift), b: rng.normal() }));
    const quiet = computeDriftStep('data', side(rows(1500, 0)), side(rows(500, 0)), OPTIONS, 's');
    assert.ok(quiet.features.every((f) => f.method === 'wasserstein' && f.p_value === null));
    assert.equal(quiet.checks[0]!.drifted, false);
    const shifted = computeDriftStep('data', side(rows(1500, 0)), side(rows(500, 0.5)), OPTIONS, 's');
    const a = shifted.features.find((f) => f.feature === 'a')!;
    assert.ok(a.drifted && a.statistic >= 0.1);
    // one of two features = 50 % → dataset drift (Evidently's share rule, ≥)
    assert.equal(shifted.checks[0]!.drifted, true);
  });

  test('false-positive rate over 40 random 80/80 splits of 160 rendered images ≤ 10 %', (t) => {
    const pool = [...reference, ...same];
    let fp = 0;
    const trials = 40;
    for (let k = 0; k < trials; k++) {
      const order = new Rng(`split-${k}`).shuffle(Array.from({ length: pool.length }, (_, i) => i));
      const a = order.slice(0, 80).map((i) => pool[i]!);
      const b = order.slice(80).map((i) => pool[i]!);
      if (computeDriftStep('data', side(a), side(b), OPTIONS, `fp-${k}`).checks[0]!.drifted) fp++;
    }
    t.diagnostic(`dataset-drift false-positive rate: ${fp}/${trials}`);
    assert.ok(fp / trials <= 0.1, `${fp}/${trials}`);
  });
});

describe('embedding drift (MMD permutation test, domain classifier)', () => {
  const make = (seed: string, n: number, shift: number) => {
    const rng = new Rng(seed);
    return embeddings(rng, labelsWithRate(rng, n, 0.5), shift);
  };

  test('fires on mean-shifted embeddings', () => {
    const ref = side([], make('ref', 200, 0));
    const cur = side([], make('cur', 200, 0.3));
    const mmd = check(computeDriftStep('embedding_mmd', ref, cur, OPTIONS, 'e').checks, 'embedding_mmd');
    const dc = check(computeDriftStep('embedding_classifier', ref, cur, OPTIONS, 'e').checks, 'embedding_classifier');
    assert.ok(mmd.drifted, JSON.stringify(mmd));
    assert.ok(dc.drifted, JSON.stringify(dc));
  });

  test('skips with a reason when too few embeddings', () => {
    for (const step of ['embedding_mmd', 'embedding_classifier'] as const) {
      const r = computeDriftStep(step, side([], make('ref', 10, 0)), side([], make('cur', 10, 0)), OPTIONS, 'e');
      assert.match(r.checks[0]!.skipped ?? '', /too few embeddings/);
    }
  });

  test('false-positive rates over 20 seeded trials: MMD ≤ 15 %, classifier ≤ 20 %', (t) => {
    let mmdFp = 0;
    let dcFp = 0;
    const trials = 20;
    for (let k = 0; k < trials; k++) {
      const a = side([], make(`a${k}`, 150, 0));
      const b = side([], make(`b${k}`, 150, 0));
      if (check(computeDriftStep('embedding_mmd', a, b, OPTIONS, `t${k}`).checks, 'embedding_mmd').drifted) mmdFp++;
      if (check(computeDriftStep('embedding_classifier', a, b, OPTIONS, `t${k}`).checks, 'embedding_classifier').drifted) dcFp++;
    }
    t.diagnostic(`MMD false-positive rate: ${mmdFp}/${trials}; domain classifier: ${dcFp}/${trials}`);
    assert.ok(mmdFp / trials <= 0.15, `MMD ${mmdFp}/${trials}`);
    assert.ok(dcFp / trials <= 0.2, `classifier ${dcFp}/${trials}`);
  });
});

describe('prediction drift', () => {
  const window = (seed: string, n: number, rate: number) => {
    const rng = new Rng(seed);
    return probabilities(rng, labelsWithRate(rng, n, rate));
  };

  test('fires on a different class mix (30 % → 60 % pneumonia)', () => {
    const r = computeDriftStep('prediction', side([], [], window('ref', 300, 0.3)), side([], [], window('cur', 300, 0.6)), OPTIONS, 'p');
    check(r.checks, 'prediction_positive_rate');
    const rate = r.checks.find((c) => c.detector === 'prediction_positive_rate')!;
    assert.ok(rate.drifted && rate.statistic! > 0, JSON.stringify(rate));
    assert.ok(check(r.checks, 'prediction_distribution').drifted);
  });

  test('false-positive rate over 100 seeded trials ≤ 15 %', (t) => {
    let fp = 0;
    const trials = 100;
    for (let k = 0; k < trials; k++) {
      const r = computeDriftStep('prediction', side([], [], window(`a${k}`, 300, 0.4)), side([], [], window(`b${k}`, 300, 0.4)), OPTIONS, 'p');
      if (r.checks.some((c) => c.drifted)) fp++;
    }
    t.diagnostic(`prediction-drift false-positive rate: ${fp}/${trials}`);
    assert.ok(fp / trials <= 0.15, `${fp}/${trials}`);
  });
});

test('computeDrift runs every detector in a fixed order', () => {
  const rng = new Rng('all');
  const labels = labelsWithRate(rng, 120, 0.5);
  const stats = renderedStats(0, 40).map((s) => flattenStats(s));
  const r = computeDrift(
    side(stats, embeddings(rng, labels), probabilities(rng, labels)),
    side(stats, embeddings(rng, labels), probabilities(rng, labels)),
    OPTIONS,
    'x',
  );
  assert.deepEqual(
    r.checks.map((c) => c.detector),
    ['data', 'embedding_mmd', 'embedding_classifier', 'prediction_positive_rate', 'prediction_distribution'],
  );
});
