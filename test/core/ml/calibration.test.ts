import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyServingTemperature,
  casesForHalfWidth,
  clopperPearsonInterval,
  confusionAt,
  fitSiteCalibration,
  normalQuantile,
  probabilityLogit,
  requireEnoughCases,
  Rng,
  sigmoid,
  wilsonInterval,
} from '../../../src/core/ml/index.js';
import { AppError } from '../../../src/core/errors.js';

const close = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);

describe('site calibration math', () => {
  test('normal quantile and the serving temperature', () => {
    close(normalQuantile(0.975), 1.959963985, 1e-8, 'z 0.975');
    close(normalQuantile(0.005), -2.575829304, 1e-8, 'z 0.005');
    assert.equal(applyServingTemperature(0.3, null), 0.3);
    assert.equal(applyServingTemperature(0.3, 1), 0.3);
    close(applyServingTemperature(sigmoid(2), 2), sigmoid(1), 1e-12, 'T=2 halves the logit');
    close(applyServingTemperature(sigmoid(-3), 0.5), sigmoid(-6), 1e-12, 'T=0.5 doubles it');
    close(applyServingTemperature(0.5, 7), 0.5, 1e-15, 'p=0.5 is a fixed point');
    // A saturated float32 output still has a finite logit.
    assert.ok(Number.isFinite(probabilityLogit(1)) && probabilityLogit(1) > 16 && probabilityLogit(1) < 16.2);
    assert.throws(() => applyServingTemperature(0.5, 0), /temperature/);
  });

  test('Wilson and Clopper–Pearson intervals match published values', () => {
    const w = wilsonInterval(5, 10);
    close(w[0], 0.2366, 1e-4, 'wilson 5/10 lo');
    close(w[1], 0.7634, 1e-4, 'wilson 5/10 hi');
    assert.deepEqual(wilsonInterval(0, 10).map((x) => Number(x.toFixed(4))), [0, 0.2775]);
    const cp = clopperPearsonInterval(5, 10);
    close(cp[0], 0.187086, 1e-6, 'CP 5/10 lo (scipy beta.ppf)');
    close(cp[1], 0.812914, 1e-6, 'CP 5/10 hi');
    const cp2 = clopperPearsonInterval(81, 263);
    close(cp2[0], 0.252737, 1e-6, 'CP 81/263 lo');
    close(cp2[1], 0.367622, 1e-6, 'CP 81/263 hi');
    // Exact ends at k = 0 and k = n: 1 − (alpha/2)^(1/n).
    close(clopperPearsonInterval(0, 10)[1], 1 - 0.025 ** 0.1, 1e-9, 'CP 0/10 hi');
    close(clopperPearsonInterval(10, 10)[0], 0.025 ** 0.1, 1e-9, 'CP 10/10 lo');
    assert.throws(() => wilsonInterval(11, 10), /k must be/);
  });

  test('cases needed for a ±0.05 interval (Wilson, at the expected count)', () => {
    assert.equal(casesForHalfWidth(0.95, 0.05), 83);
    assert.equal(casesForHalfWidth(0.9, 0.05), 141);
    assert.equal(casesForHalfWidth(0.5, 0.05), 381);
    assert.equal(casesForHalfWidth(0.95, 0.02), 469);
    const [lo, hi] = wilsonInterval(Math.round(0.95 * 83 * 100), 83 * 100);
    assert.ok(hi - lo < 0.1, 'sanity: larger n, narrower');
  });

  test('too few cases is a typed 422 naming what is missing', () => {
    assert.doesNotThrow(() => requireEnoughCases(30, 30));
    assert.throws(
      () => requireEnoughCases(12, 40, 30),
      (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.code, 'TOO_FEW_CASES');
        assert.equal(err.status, 422);
        assert.match(err.message, /12 PNEUMONIA and 40 NORMAL, at least 30 of each/);
        assert.equal((err.details as { needed: { positives_for_sensitivity: number } }).needed.positives_for_sensitivity, 83);
        return true;
      },
    );
    assert.throws(() => requireEnoughCases(100, 100, 5), /min cases must be an integer ≥ 10/);
  });

  test('recovers the temperature of an over-confident model and hits the target sensitivity', () => {
    const rng = new Rng('calibration-test');
    const n = 20000;
    const labels = new Uint8Array(n);
    const raw = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const z = rng.normal() * 2.5;
      labels[i] = rng.next() < sigmoid(z) ? 1 : 0;
      raw[i] = sigmoid(2 * z); // logits twice too large: the true temperature is 2
    }
    const fit = fitSiteCalibration(labels, raw, { method: 'sensitivity', targetSensitivity: 0.95, bootstrap: 0 });
    close(fit.temperature, 2, 0.1, 'temperature');
    assert.ok(fit.nll_after < fit.nll_before);
    assert.ok(fit.ece_after < fit.ece_before);
    assert.ok(fit.sensitivity.value >= 0.95 && fit.sensitivity.value < 0.9502, `sensitivity ${fit.sensitivity.value}`);
    // The threshold is on the served (calibrated) scale and reproduces the reported confusion.
    const served = Array.from(raw, (p) => applyServingTemperature(p, fit.temperature));
    assert.deepEqual(confusionAt(labels, served, fit.threshold), fit.confusion);
    assert.equal(fit.sensitivity.k, fit.confusion.tp);
    assert.equal(fit.specificity.k, fit.confusion.tn);
    assert.ok(fit.sensitivity.ci[0] < 0.95 && fit.sensitivity.ci[1] > 0.95);
    assert.equal(fit.sample_size.positives_needed, 83);
    assert.equal(fit.sample_size.sufficient, true);
  });

  test("Youden's J on a small separable set, and Clopper–Pearson on request", () => {
    const labels = [...Array(15).fill(0), ...Array(15).fill(1)];
    const raw = [...Array.from({ length: 15 }, (_, i) => 0.1 + i * 0.01), ...Array.from({ length: 15 }, (_, i) => 0.6 + i * 0.01)];
    const fit = fitSiteCalibration(labels, raw, { method: 'youden', minCases: 15, ciMethod: 'clopper-pearson', bootstrap: 200 });
    assert.equal(fit.sensitivity.value, 1);
    assert.equal(fit.specificity.value, 1);
    assert.equal(fit.auc, 1);
    assert.ok(fit.temperature < 0.2, 'separable data: the NLL wants sharper probabilities');
    close(fit.sensitivity.ci[0], 0.025 ** (1 / 15), 1e-9, 'exact lower bound at 15/15');
    assert.equal(fit.sensitivity.method, 'clopper-pearson');
    assert.equal(fit.sample_size.sufficient, false, '15 cases cannot give ±0.05');
    assert.throws(() => fitSiteCalibration(labels, raw, { method: 'youden' }), (err: unknown) => err instanceof AppError && err.code === 'TOO_FEW_CASES');
  });
});
