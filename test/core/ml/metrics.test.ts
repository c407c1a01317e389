import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyTemperature,
  bootstrapAucCi,
  calibration,
  chooseThreshold,
  classificationMetrics,
  confusionAt,
  evaluateBinary,
  fitTemperature,
  rocAuc,
  rocCurve,
  sigmoid,
} from '../../../src/core/ml/metrics.js';
import { Rng } from '../../../src/core/ml/random.js';
import { isAppError } from '../../../src/core/errors.js';

const close = (a: number, b: number, tol = 1e-12): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

/** Scores from two overlapping normals, as probabilities. */
function synthetic(n: number, seed: number, separation = 1.5): { labels: number[]; scores: number[] } {
  const rng = new Rng(seed);
  const labels: number[] = [];
  const scores: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.next() < 0.6 ? 1 : 0;
    labels.push(y);
    scores.push(sigmoid(rng.normal(y ? separation / 2 : -separation / 2, 1)));
  }
  return { labels, scores };
}

describe('rocAuc', () => {
  test('counts ties as one half (hand-computed Mann–Whitney)', () => {
    // Positives 0.9, 0.5, 0.5; negatives 0.5, 0.1, 0.7.
    // 0.9 beats all 3; each 0.5 beats 0.1, ties 0.5, loses to 0.7 → 1.5. U = 6 of 9 pairs.
    close(rocAuc([1, 1, 0, 0, 1, 0], [0.9, 0.5, 0.5, 0.1, 0.5, 0.7]), 6 / 9);
    // All scores tied → 0.5.
    close(rocAuc([1, 0, 1, 0], [0.3, 0.3, 0.3, 0.3]), 0.5);
  });

  test('perfect, inverse and random rankings', () => {
    close(rocAuc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]), 1);
    close(rocAuc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]), 0);
    close(rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75); // sklearn's docstring example
    const rng = new Rng(11);
    const labels = Array.from({ length: 4000 }, () => (rng.next() < 0.5 ? 1 : 0));
    const scores = labels.map(() => rng.next());
    assert.ok(Math.abs(rocAuc(labels, scores) - 0.5) < 0.03);
  });

  test('is NaN with one class and rejects bad input', () => {
    assert.ok(Number.isNaN(rocAuc([1, 1], [0.2, 0.3])));
    for (const [labels, scores] of [
      [[], []],
      [[0, 1], [0.5]],
      [[0, 2], [0.5, 0.5]],
      [[0, 1], [0.5, Number.NaN]],
    ] as const) {
      assert.throws(() => rocAuc(labels, scores), (e: unknown) => isAppError(e) && e.code === 'INVALID_INPUT');
    }
  });
});

describe('rocCurve', () => {
  test('matches sklearn on its docstring example', () => {
    const roc = rocCurve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]);
    assert.deepEqual(
      roc.map((p) => [p.fpr, p.tpr]),
      [
        [0, 0],
        [0, 0.5],
        [0.5, 0.5],
        [0.5, 1],
        [1, 1],
      ],
    );
    assert.deepEqual(
      roc.map((p) => p.threshold),
      [1.8, 0.8, 0.4, 0.35, 0.1],
    );
  });

  test('caps the number of points, keeps the ends, stays monotone', () => {
    const { labels, scores } = synthetic(3000, 1);
    const roc = rocCurve(labels, scores, { maxPoints: 50 });
    assert.ok(roc.length <= 50 && roc.length > 20, `${roc.length} points`);
    assert.deepEqual([roc[0]?.fpr, roc[0]?.tpr], [0, 0]);
    assert.deepEqual([roc.at(-1)?.fpr, roc.at(-1)?.tpr], [1, 1]);
    for (let i = 1; i < roc.length; i++) {
      const [a, b] = [roc[i - 1]!, roc[i]!];
      assert.ok(b.fpr >= a.fpr && b.tpr >= a.tpr && b.threshold < a.threshold);
    }
  });
});

describe('bootstrapAucCi', () => {
  test('contains the AUC and is deterministic for a seed', () => {
    const { labels, scores } = synthetic(400, 2);
    const auc = rocAuc(labels, scores);
    const [lo, hi] = bootstrapAucCi(labels, scores, { n: 500, seed: 3 });
    assert.ok(lo < auc && auc < hi, `${lo} < ${auc} < ${hi}`);
    assert.ok(hi - lo > 0.02 && hi - lo < 0.2, `width ${hi - lo}`);
    assert.deepEqual(bootstrapAucCi(labels, scores, { n: 500, seed: 3 }), [lo, hi]);
    assert.notDeepEqual(bootstrapAucCi(labels, scores, { n: 500, seed: 4 }), [lo, hi]);
  });

  test('narrows with more data', () => {
    const small = synthetic(200, 5);
    const large = synthetic(3200, 5);
    const [a, b] = bootstrapAucCi(small.labels, small.scores, { n: 300 });
    const [c, d] = bootstrapAucCi(large.labels, large.scores, { n: 300 });
    assert.ok(d - c < (b - a) / 2);
  });
});

describe('confusion and rates', () => {
  test('predicts positive at score ≥ threshold', () => {
    const c = confusionAt([1, 1, 0, 0, 1], [0.5, 0.4, 0.5, 0.1, 0.9], 0.5);
    assert.deepEqual(c, { tp: 2, fp: 1, tn: 1, fn: 1 });
    const m = classificationMetrics(c);
    close(m.accuracy, 3 / 5);
    close(m.sensitivity, 2 / 3);
    close(m.specificity, 1 / 2);
    close(m.ppv, 2 / 3);
    close(m.npv, 1 / 2);
    close(m.f1, 2 / 3);
  });

  test('reports 0, not NaN, on empty denominators', () => {
    const m = classificationMetrics({ tp: 0, fp: 0, tn: 5, fn: 0 });
    assert.deepEqual(m, { accuracy: 1, sensitivity: 0, specificity: 1, ppv: 0, npv: 1, f1: 0 });
    assert.deepEqual(classificationMetrics({ tp: 0, fp: 0, tn: 0, fn: 0 }), {
      accuracy: 0,
      sensitivity: 0,
      specificity: 0,
      ppv: 0,
      npv: 0,
      f1: 0,
    });
  });
});

describe('chooseThreshold', () => {
  test('Youden picks the separating score', () => {
    const t = chooseThreshold([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.7, 0.8], { method: 'youden' });
    assert.deepEqual(t, { threshold: 0.6, method: 'youden', sensitivity: 1, specificity: 1 });
  });

  test('Youden on overlapping scores (hand-computed)', () => {
    // Descending: 0.9(1) 0.8(0) 0.7(1) 0.6(1) 0.4(0) 0.3(1) 0.2(0) 0.1(0); P = N = 4.
    // J at 0.6 = 3/4 − 1/4 = 0.5 is the maximum (0.9: 0.25, 0.7: 0.25, 0.3: 0.5 but lower threshold).
    const labels = [1, 0, 1, 1, 0, 1, 0, 0];
    const scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1];
    const t = chooseThreshold(labels, scores, { method: 'youden' });
    assert.equal(t.threshold, 0.6);
    const m = classificationMetrics(confusionAt(labels, scores, t.threshold));
    assert.equal(m.sensitivity, t.sensitivity);
    assert.equal(m.specificity, t.specificity);
  });

  test('sensitivity target takes the highest threshold that reaches it', () => {
    const labels = [1, 0, 1, 1, 0, 1, 0, 0];
    const scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1];
    assert.deepEqual(chooseThreshold(labels, scores, { method: 'sensitivity', targetSensitivity: 1 }), {
      threshold: 0.3,
      method: 'sensitivity',
      sensitivity: 1,
      specificity: 0.5,
    });
    assert.equal(chooseThreshold(labels, scores, { method: 'sensitivity', targetSensitivity: 0.7 }).threshold, 0.6);
    assert.throws(() => chooseThreshold([1, 1], [0.1, 0.2], { method: 'youden' }), isAppError);
  });
});

describe('calibration', () => {
  test('bins by equal width and computes the ECE (hand example)', () => {
    const cal = calibration([0, 1, 1, 1], [0.05, 0.15, 0.95, 1], { bins: 2 });
    assert.equal(cal.bins.length, 2);
    assert.deepEqual(cal.bins[0], { lo: 0, hi: 0.5, count: 2, mean_pred: 0.1, frac_pos: 0.5 });
    assert.equal(cal.bins[1]?.count, 2);
    close(cal.bins[1]!.mean_pred, 0.975);
    // ECE = ½·|0.5 − 0.1| + ½·|1 − 0.975|
    close(cal.ece, 0.5 * 0.4 + 0.5 * 0.025);
    assert.throws(() => calibration([0, 1], [0.2, 1.2]), isAppError);
  });

  test('is small for calibrated scores and large for overconfident ones', () => {
    const rng = new Rng(21);
    const labels: number[] = [];
    const calibrated: number[] = [];
    const overconfident: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const p = rng.next();
      labels.push(rng.next() < p ? 1 : 0);
      calibrated.push(p);
      overconfident.push(sigmoid(4 * Math.log(p / (1 - p))));
    }
    const good = calibration(labels, calibrated).ece;
    const bad = calibration(labels, overconfident).ece;
    assert.ok(good < 0.02, `calibrated ECE ${good}`);
    assert.ok(bad > 0.1, `overconfident ECE ${bad}`);
  });
});

describe('fitTemperature', () => {
  test('recovers the temperature that produced overconfident logits', () => {
    const rng = new Rng(31);
    const labels: number[] = [];
    const logits: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const z = rng.normal(0, 2);
      labels.push(rng.next() < sigmoid(z) ? 1 : 0);
      logits.push(2.5 * z); // the model is 2.5× too confident
    }
    const fit = fitTemperature(labels, logits);
    assert.ok(Math.abs(fit.temperature - 2.5) < 0.15, `T = ${fit.temperature}`);
    assert.ok(fit.nllAfter < fit.nllBefore);
    const before = calibration(labels, applyTemperature(logits, 1)).ece;
    const after = calibration(labels, applyTemperature(logits, fit.temperature)).ece;
    assert.ok(after < before / 3, `ECE ${before} → ${after}`);
  });

  test('stays near 1 for calibrated logits', () => {
    const rng = new Rng(32);
    const labels: number[] = [];
    const logits: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const z = rng.normal(0, 2);
      labels.push(rng.next() < sigmoid(z) ? 1 : 0);
      logits.push(z);
    }
    assert.ok(Math.abs(fitTemperature(labels, logits).temperature - 1) < 0.08);
  });
});

describe('evaluateBinary', () => {
  test('produces the shared snake_case shape, JSON-safe', () => {
    const { labels, scores } = synthetic(300, 41);
    const ev = evaluateBinary(labels, scores, { bootstrap: 200, seed: 1 });
    assert.deepEqual(Object.keys(ev).sort(), [
      'accuracy',
      'auc',
      'auc_ci',
      'calibration',
      'confusion',
      'f1',
      'n',
      'npv',
      'positives',
      'ppv',
      'roc',
      'sensitivity',
      'specificity',
      'threshold',
      'threshold_method',
    ]);
    assert.equal(ev.n, 300);
    assert.equal(ev.positives, labels.filter((y) => y === 1).length);
    assert.equal(ev.threshold, 0.5);
    assert.equal(ev.threshold_method, 'fixed');
    assert.equal(ev.auc, rocAuc(labels, scores));
    assert.ok(ev.auc_ci && ev.auc_ci[0] < ev.auc! && ev.auc! < ev.auc_ci[1]);
    assert.deepEqual(ev.confusion, confusionAt(labels, scores, 0.5));
    assert.equal(ev.sensitivity, classificationMetrics(ev.confusion).sensitivity);
    assert.equal(ev.calibration.bins.length, 10);
    assert.deepEqual(JSON.parse(JSON.stringify(ev)), ev);
  });

  test('threshold precedence and method', () => {
    const { labels, scores } = synthetic(300, 42);
    assert.equal(evaluateBinary(labels, scores, { threshold: 0.3, thresholdMethod: 'youden', bootstrap: 0 }).threshold, 0.3);
    const youden = evaluateBinary(labels, scores, { thresholdMethod: 'youden', bootstrap: 0 });
    assert.equal(youden.threshold_method, 'youden');
    assert.equal(youden.threshold, chooseThreshold(labels, scores, { method: 'youden' }).threshold);
    assert.equal(youden.auc_ci, null);
    const sens = evaluateBinary(labels, scores, { thresholdMethod: 'sensitivity', targetSensitivity: 0.9, bootstrap: 0 });
    assert.ok(sens.sensitivity >= 0.9);
  });

  test('single-class data gives null AUC instead of NaN', () => {
    const ev = evaluateBinary([1, 1, 1], [0.2, 0.7, 0.9]);
    assert.equal(ev.auc, null);
    assert.equal(ev.auc_ci, null);
    assert.equal(ev.sensitivity, 2 / 3);
    assert.equal(ev.specificity, 0);
  });
});
