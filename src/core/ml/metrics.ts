/**
 * Binary-classification metrics. The positive class is PNEUMONIA = 1, the
 * negative NORMAL = 0; `scores` are the model's positive-class scores
 * (probabilities unless a function says otherwise), and a case is predicted
 * positive when `score ≥ threshold`.
 *
 * {@link evaluateBinary} produces the evaluation JSON shared by the training,
 * registry, deployment and monitoring services, the CLI and the Python trainer.
 */
import { invalidInput } from '../errors.js';
import { Rng } from './random.js';
import type { Seed } from './random.js';
import { quantileSorted } from './stats.js';

/** Counts of a confusion matrix at one threshold. */
export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** Rates derived from a {@link Confusion}. */
export interface ClassificationMetrics {
  accuracy: number;
  /** Recall / true-positive rate: tp / (tp + fn). */
  sensitivity: number;
  /** True-negative rate: tn / (tn + fp). */
  specificity: number;
  /** Precision: tp / (tp + fp). */
  ppv: number;
  /** tn / (tn + fn). */
  npv: number;
  f1: number;
}

/** One ROC point; positives are predicted for `score ≥ threshold`. */
export interface RocPoint {
  fpr: number;
  tpr: number;
  threshold: number;
}

export type ThresholdMethod = 'youden' | 'sensitivity';

/** Result of {@link chooseThreshold}. */
export interface ThresholdChoice {
  threshold: number;
  method: ThresholdMethod;
  /** Sensitivity achieved at `threshold` on the data it was chosen on. */
  sensitivity: number;
  /** Specificity achieved at `threshold` on the data it was chosen on. */
  specificity: number;
}

/** One equal-width probability bin of a reliability diagram. */
export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean predicted probability in the bin (0 when `count` is 0). */
  mean_pred: number;
  /** Observed fraction of positives in the bin (0 when `count` is 0). */
  frac_pos: number;
}

/** Reliability diagram plus expected calibration error. */
export interface Calibration {
  /** Σ_bins (count / n) · |frac_pos − mean_pred|. */
  ece: number;
  bins: CalibrationBin[];
}

/** Result of {@link fitTemperature}. */
export interface TemperatureFit {
  /** T > 0; calibrated probability = sigmoid(logit / T). */
  temperature: number;
  /** Mean negative log-likelihood at T = 1. */
  nllBefore: number;
  /** Mean negative log-likelihood at the fitted T. */
  nllAfter: number;
}

/**
 * The evaluation JSON. Keys are snake_case on purpose: the Python trainer
 * writes the same shape, and registry/monitoring store it verbatim.
 */
export interface BinaryEvaluation {
  n: number;
  positives: number;
  /** ROC AUC; null when only one class is present. */
  auc: number | null;
  /** Percentile bootstrap interval for the AUC; null when disabled or undefined. */
  auc_ci: [number, number] | null;
  accuracy: number;
  sensitivity: number;
  specificity: number;
  ppv: number;
  npv: number;
  f1: number;
  threshold: number;
  threshold_method: 'fixed' | ThresholdMethod;
  confusion: Confusion;
  roc: RocPoint[];
  calibration: Calibration;
}

/** Options of {@link evaluateBinary}. */
export interface EvaluateOptions {
  /** Fixed threshold; takes precedence over `thresholdMethod`. */
  threshold?: number;
  /** Choose the threshold on these data instead (optimistic on a test set). */
  thresholdMethod?: ThresholdMethod;
  /** Target for `thresholdMethod: 'sensitivity'` (default 0.95). */
  targetSensitivity?: number;
  /** Bootstrap resamples for `auc_ci` (default 1000; 0 disables it). */
  bootstrap?: number;
  /** Seed of the bootstrap (default 0). */
  seed?: Seed;
  /** Two-sided level of `auc_ci` (default 0.05 → 95 % interval). */
  alpha?: number;
  /** Maximum number of ROC points kept (default 200). */
  rocMaxPoints?: number;
  /** Number of calibration bins (default 10). */
  calibrationBins?: number;
}

interface BinaryData {
  labels: Uint8Array;
  scores: Float64Array;
  positives: number;
  negatives: number;
}

/** Validates and copies labels (0/1) and finite scores of equal, non-zero length. */
function binaryData(labels: ArrayLike<number>, scores: ArrayLike<number>): BinaryData {
  const n = labels.length;
  if (n === 0) throw invalidInput('labels and scores must not be empty');
  if (scores.length !== n) {
    throw invalidInput(`labels and scores differ in length (${n} vs ${scores.length})`);
  }
  const y = new Uint8Array(n);
  const s = new Float64Array(n);
  let positives = 0;
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    if (label !== 0 && label !== 1) throw invalidInput(`labels[${i}] must be 0 or 1, got ${String(label)}`);
    const score = scores[i];
    if (typeof score !== 'number' || !Number.isFinite(score)) {
      throw invalidInput(`scores[${i}] is not a finite number`);
    }
    y[i] = label;
    s[i] = score;
    positives += label;
  }
  return { labels: y, scores: s, positives, negatives: n - positives };
}

/** Indices ordered by ascending score. */
function ascendingOrder(scores: Float64Array): Uint32Array {
  const order = new Uint32Array(scores.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => scores[a] - scores[b]);
  return order;
}

/**
 * Start offsets of runs of equal scores in `order` (ascending), followed by
 * `order.length` as a sentinel.
 */
function tieGroups(scores: Float64Array, order: Uint32Array): Uint32Array {
  const starts: number[] = [0];
  for (let k = 1; k < order.length; k++) {
    if (scores[order[k]] !== scores[order[k - 1]]) starts.push(k);
  }
  starts.push(order.length);
  return Uint32Array.from(starts);
}

/**
 * AUC from labels listed in ascending score order and the tie-group starts
 * of that order, each position counted `weights[k]` times (or once). Ties
 * count one half (Mann–Whitney U / (P·N)).
 */
function aucFromSorted(sortedLabels: Uint8Array, groups: Uint32Array, weights?: Uint32Array): number {
  let negBelow = 0;
  let pos = 0;
  let u = 0;
  for (let g = 0; g + 1 < groups.length; g++) {
    let gPos = 0;
    let gNeg = 0;
    for (let k = groups[g]; k < groups[g + 1]; k++) {
      const w = weights ? weights[k] : 1;
      if (sortedLabels[k] === 1) gPos += w;
      else gNeg += w;
    }
    u += gPos * (negBelow + 0.5 * gNeg);
    negBelow += gNeg;
    pos += gPos;
  }
  return pos === 0 || negBelow === 0 ? Number.NaN : u / (pos * negBelow);
}

function labelsInOrder(labels: Uint8Array, order: Uint32Array): Uint8Array {
  const out = new Uint8Array(order.length);
  for (let k = 0; k < order.length; k++) out[k] = labels[order[k]];
  return out;
}

/**
 * Area under the ROC curve, exact with ties (the Mann–Whitney statistic
 * U / (P·N): a tied positive/negative pair counts ½). Equals sklearn's
 * `roc_auc_score`.
 *
 * @returns the AUC, or NaN when `labels` hold only one class.
 * @throws AppError INVALID_INPUT on empty or mismatched inputs, labels other
 *   than 0/1, or non-finite scores.
 */
export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const d = binaryData(labels, scores);
  const order = ascendingOrder(d.scores);
  return aucFromSorted(labelsInOrder(d.labels, order), tieGroups(d.scores, order));
}

interface RocCounts {
  /** Cumulative true positives at each distinct threshold, descending thresholds. */
  tps: Float64Array;
  fps: Float64Array;
  thresholds: Float64Array;
}

/**
 * Every distinct threshold, highest first, preceded by a point that predicts
 * nothing positive (threshold = max score + 1, sklearn's former convention,
 * kept finite so the curve survives JSON).
 */
function rocCounts(d: BinaryData): RocCounts {
  const order = ascendingOrder(d.scores);
  const groups = tieGroups(d.scores, order);
  const nGroups = groups.length - 1;
  const tps = new Float64Array(nGroups + 1);
  const fps = new Float64Array(nGroups + 1);
  const thresholds = new Float64Array(nGroups + 1);
  thresholds[0] = d.scores[order[order.length - 1]] + 1;
  let tp = 0;
  let fp = 0;
  for (let g = nGroups - 1, p = 1; g >= 0; g--, p++) {
    const start = groups[g];
    for (let k = start; k < groups[g + 1]; k++) {
      if (d.labels[order[k]] === 1) tp++;
      else fp++;
    }
    tps[p] = tp;
    fps[p] = fp;
    thresholds[p] = d.scores[order[start]];
  }
  return { tps, fps, thresholds };
}

function toPoint(c: RocCounts, i: number, positives: number, negatives: number): RocPoint {
  return {
    fpr: negatives > 0 ? c.fps[i] / negatives : 0,
    tpr: positives > 0 ? c.tps[i] / positives : 0,
    threshold: c.thresholds[i],
  };
}

/**
 * ROC curve from (0, 0) to (1, 1), thresholds descending. Collinear
 * intermediate points are dropped (as sklearn's `drop_intermediate`), then,
 * if more than `maxPoints` remain, points are kept evenly along the curve's
 * length; the end points are always kept. The first point's threshold is
 * `max(score) + 1`. With one class only, the missing rate is reported as 0.
 *
 * @throws AppError INVALID_INPUT on invalid inputs (see {@link rocAuc}) or `maxPoints < 2`.
 */
export function rocCurve(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: { maxPoints?: number } = {},
): RocPoint[] {
  const maxPoints = options.maxPoints ?? 200;
  if (!Number.isInteger(maxPoints) || maxPoints < 2) throw invalidInput('maxPoints must be an integer ≥ 2');
  const d = binaryData(labels, scores);
  const c = rocCounts(d);
  const m = c.tps.length;
  const kept: number[] = [0];
  for (let i = 1; i < m - 1; i++) {
    const dTp = c.tps[i + 1] - 2 * c.tps[i] + c.tps[i - 1];
    const dFp = c.fps[i + 1] - 2 * c.fps[i] + c.fps[i - 1];
    if (dTp !== 0 || dFp !== 0) kept.push(i);
  }
  if (m > 1) kept.push(m - 1);
  let chosen = kept;
  if (kept.length > maxPoints) {
    // Cumulative L1 length of the curve in rate space, sampled at even spacing.
    const pts = kept.map((i) => toPoint(c, i, d.positives, d.negatives));
    const cum = new Float64Array(pts.length);
    for (let k = 1; k < pts.length; k++) {
      const a = pts[k - 1] as RocPoint;
      const b = pts[k] as RocPoint;
      cum[k] = cum[k - 1] + Math.abs(b.fpr - a.fpr) + Math.abs(b.tpr - a.tpr);
    }
    const total = cum[pts.length - 1];
    const picked: number[] = [];
    let k = 0;
    for (let s = 0; s < maxPoints; s++) {
      const target = (total * s) / (maxPoints - 1);
      while (k < pts.length - 1 && cum[k] < target) k++;
      if (picked.length === 0 || picked[picked.length - 1] !== k) picked.push(k);
    }
    if (picked[picked.length - 1] !== pts.length - 1) picked.push(pts.length - 1);
    chosen = picked.map((p) => kept[p]);
  }
  return chosen.map((i) => toPoint(c, i, d.positives, d.negatives));
}

/**
 * Percentile bootstrap confidence interval of the ROC AUC. Resampling is
 * stratified (positives and negatives are resampled separately, so every
 * replicate has both classes); each replicate costs O(n) because the samples
 * are sorted once and replicates only change multiplicities.
 *
 * @returns `[lo, hi]` at levels alpha/2 and 1 − alpha/2 (linear interpolation),
 *   or `[NaN, NaN]` when only one class is present.
 * @throws AppError INVALID_INPUT on invalid inputs, `n < 1` or alpha outside (0, 1).
 */
export function bootstrapAucCi(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: { n?: number; seed?: Seed; alpha?: number } = {},
): [number, number] {
  const replicates = options.n ?? 1000;
  const alpha = options.alpha ?? 0.05;
  if (!Number.isInteger(replicates) || replicates < 1) throw invalidInput('bootstrap n must be an integer ≥ 1');
  if (!(alpha > 0 && alpha < 1)) throw invalidInput('alpha must be in (0, 1)');
  const d = binaryData(labels, scores);
  if (d.positives === 0 || d.negatives === 0) return [Number.NaN, Number.NaN];
  const order = ascendingOrder(d.scores);
  const groups = tieGroups(d.scores, order);
  const sortedLabels = labelsInOrder(d.labels, order);
  // Positions (in score order) of each class; replicates only change multiplicities.
  const posAt = new Uint32Array(d.positives);
  const negAt = new Uint32Array(d.negatives);
  for (let k = 0, p = 0, q = 0; k < sortedLabels.length; k++) {
    if (sortedLabels[k] === 1) posAt[p++] = k;
    else negAt[q++] = k;
  }
  const rng = new Rng(options.seed ?? 0);
  const weights = new Uint32Array(sortedLabels.length);
  const aucs = new Float64Array(replicates);
  for (let r = 0; r < replicates; r++) {
    weights.fill(0);
    for (let k = 0; k < posAt.length; k++) weights[posAt[rng.int(posAt.length)]]++;
    for (let k = 0; k < negAt.length; k++) weights[negAt[rng.int(negAt.length)]]++;
    aucs[r] = aucFromSorted(sortedLabels, groups, weights);
  }
  aucs.sort();
  return [quantileSorted(aucs, alpha / 2), quantileSorted(aucs, 1 - alpha / 2)];
}

/**
 * Confusion counts when predicting positive for `score ≥ threshold`.
 * @throws AppError INVALID_INPUT on invalid inputs or a NaN threshold.
 */
export function confusionAt(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold: number): Confusion {
  if (Number.isNaN(threshold)) throw invalidInput('threshold must be a number');
  const d = binaryData(labels, scores);
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < d.labels.length; i++) {
    const predicted = d.scores[i] >= threshold;
    if (d.labels[i] === 1) {
      if (predicted) c.tp++;
      else c.fn++;
    } else if (predicted) c.fp++;
    else c.tn++;
  }
  return c;
}

const ratio = (num: number, den: number): number => (den > 0 ? num / den : 0);

/**
 * Accuracy, sensitivity, specificity, PPV, NPV and F1 of a confusion matrix.
 * A rate whose denominator is zero (e.g. PPV when nothing is predicted
 * positive) is reported as 0, never NaN, so the result is always valid JSON.
 */
export function classificationMetrics(confusion: Confusion): ClassificationMetrics {
  const { tp, fp, tn, fn } = confusion;
  const sensitivity = ratio(tp, tp + fn);
  const ppv = ratio(tp, tp + fp);
  return {
    accuracy: ratio(tp + tn, tp + fp + tn + fn),
    sensitivity,
    specificity: ratio(tn, tn + fp),
    ppv,
    npv: ratio(tn, tn + fn),
    f1: ratio(2 * tp, 2 * tp + fp + fn),
  };
}

/**
 * Picks an operating threshold on these data. The threshold is always one of
 * the observed scores, so {@link confusionAt} reproduces the reported rates.
 *
 * - `'youden'`: maximises sensitivity + specificity − 1 (ties → the higher threshold).
 * - `'sensitivity'`: the highest threshold whose sensitivity reaches
 *   `targetSensitivity` (default 0.95), i.e. the best specificity at that sensitivity.
 *
 * @throws AppError INVALID_INPUT on invalid inputs, a target outside (0, 1], or
 *   when only one class is present.
 */
export function chooseThreshold(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: { method: ThresholdMethod; targetSensitivity?: number },
): ThresholdChoice {
  const d = binaryData(labels, scores);
  if (d.positives === 0 || d.negatives === 0) {
    throw invalidInput('choosing a threshold needs both positive and negative labels');
  }
  const c = rocCounts(d);
  let best = 1;
  if (options.method === 'youden') {
    let bestJ = -Infinity;
    for (let i = 1; i < c.tps.length; i++) {
      const j = c.tps[i] / d.positives - c.fps[i] / d.negatives;
      if (j > bestJ + 1e-12) {
        bestJ = j;
        best = i;
      }
    }
  } else if (options.method === 'sensitivity') {
    const target = options.targetSensitivity ?? 0.95;
    if (!(target > 0 && target <= 1)) throw invalidInput('targetSensitivity must be in (0, 1]');
    best = c.tps.length - 1;
    for (let i = 1; i < c.tps.length; i++) {
      if (c.tps[i] / d.positives >= target - 1e-12) {
        best = i;
        break;
      }
    }
  } else {
    throw invalidInput(`unknown threshold method '${String(options.method)}'`);
  }
  return {
    threshold: c.thresholds[best],
    method: options.method,
    sensitivity: c.tps[best] / d.positives,
    specificity: 1 - c.fps[best] / d.negatives,
  };
}

/**
 * Reliability diagram over `bins` equal-width bins of [0, 1] (the last bin
 * includes 1) and the expected calibration error. Empty bins are kept with
 * `count: 0` and zero means.
 *
 * @throws AppError INVALID_INPUT on invalid inputs, scores outside [0, 1], or
 *   `bins` not a positive integer.
 */
export function calibration(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: { bins?: number } = {},
): Calibration {
  const nBins = options.bins ?? 10;
  if (!Number.isInteger(nBins) || nBins < 1) throw invalidInput('bins must be a positive integer');
  const d = binaryData(labels, scores);
  const count = new Float64Array(nBins);
  const sumPred = new Float64Array(nBins);
  const sumPos = new Float64Array(nBins);
  for (let i = 0; i < d.scores.length; i++) {
    const s = d.scores[i];
    if (s < 0 || s > 1) throw invalidInput(`scores[${i}] = ${s} is not a probability in [0, 1]`);
    const b = Math.min(Math.floor(s * nBins), nBins - 1);
    count[b]++;
    sumPred[b] += s;
    sumPos[b] += d.labels[i];
  }
  const n = d.scores.length;
  let ece = 0;
  const bins: CalibrationBin[] = [];
  for (let b = 0; b < nBins; b++) {
    const k = count[b];
    const meanPred = ratio(sumPred[b], k);
    const fracPos = ratio(sumPos[b], k);
    ece += (k / n) * Math.abs(fracPos - meanPred);
    bins.push({ lo: b / nBins, hi: (b + 1) / nBins, count: k, mean_pred: meanPred, frac_pos: fracPos });
  }
  return { ece, bins };
}

/** Logistic function, computed without overflow. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log(1 + exp(x)) without overflow. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** Mean binary cross-entropy of sigmoid(logit · a) against labels. */
function meanNll(labels: Uint8Array, logits: Float64Array, a: number): number {
  let s = 0;
  for (let i = 0; i < labels.length; i++) {
    const z = logits[i] * a;
    // −log σ(z) = softplus(−z); −log(1 − σ(z)) = softplus(z)
    s += labels[i] === 1 ? softplus(-z) : softplus(z);
  }
  return s / labels.length;
}

/** Probabilities sigmoid(logit / temperature) for a fitted temperature. */
export function applyTemperature(logits: ArrayLike<number>, temperature: number): Float64Array {
  if (!(temperature > 0)) throw invalidInput('temperature must be > 0');
  const out = new Float64Array(logits.length);
  for (let i = 0; i < out.length; i++) out[i] = sigmoid(logits[i] / temperature);
  return out;
}

/**
 * Temperature scaling: the T > 0 minimising the mean negative log-likelihood
 * of sigmoid(logit / T), by golden-section search on log T over
 * [minTemperature, maxTemperature] (default [0.05, 20]). The NLL is convex in
 * 1/T, so the search finds the global optimum inside the bracket; a model
 * whose logits anti-correlate with the labels ends on the upper bound.
 *
 * @throws AppError INVALID_INPUT on invalid inputs or an empty/invalid bracket.
 */
export function fitTemperature(
  labels: ArrayLike<number>,
  logits: ArrayLike<number>,
  options: { minTemperature?: number; maxTemperature?: number; tolerance?: number } = {},
): TemperatureFit {
  const tMin = options.minTemperature ?? 0.05;
  const tMax = options.maxTemperature ?? 20;
  if (!(tMin > 0 && tMax > tMin)) throw invalidInput('need 0 < minTemperature < maxTemperature');
  const tol = options.tolerance ?? 1e-6;
  const d = binaryData(labels, logits);
  const f = (logT: number): number => meanNll(d.labels, d.scores, Math.exp(-logT));
  const invPhi = (Math.sqrt(5) - 1) / 2;
  let a = Math.log(tMin);
  let b = Math.log(tMax);
  let c = b - invPhi * (b - a);
  let e = a + invPhi * (b - a);
  let fc = f(c);
  let fe = f(e);
  while (b - a > tol) {
    if (fc <= fe) {
      b = e;
      e = c;
      fe = fc;
      c = b - invPhi * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = e;
      fc = fe;
      e = a + invPhi * (b - a);
      fe = f(e);
    }
  }
  // Compare with the bracket ends so a boundary optimum is reported exactly.
  const candidates = [Math.log(tMin), (a + b) / 2, Math.log(tMax)];
  let bestLogT = candidates[1];
  let bestNll = f(bestLogT);
  for (const x of [candidates[0], candidates[2]]) {
    const v = f(x);
    if (v < bestNll) {
      bestNll = v;
      bestLogT = x;
    }
  }
  return { temperature: Math.exp(bestLogT), nllBefore: f(0), nllAfter: bestNll };
}

/**
 * Full evaluation of positive-class probabilities against labels: AUC with a
 * bootstrap CI, threshold metrics, confusion matrix, ROC curve and calibration.
 *
 * Threshold: `threshold` if given (`threshold_method: 'fixed'`); otherwise
 * `thresholdMethod` chosen on these same data (optimistic — prefer a threshold
 * chosen on validation data); otherwise 0.5 (`'fixed'`).
 *
 * @throws AppError INVALID_INPUT on invalid inputs (see {@link rocAuc}), scores
 *   outside [0, 1], or threshold selection with a single class.
 */
export function evaluateBinary(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: EvaluateOptions = {},
): BinaryEvaluation {
  const d = binaryData(labels, scores);
  const bootstrap = options.bootstrap ?? 1000;
  if (!Number.isInteger(bootstrap) || bootstrap < 0) throw invalidInput('bootstrap must be an integer ≥ 0');
  const cal = calibration(d.labels, d.scores, { bins: options.calibrationBins ?? 10 });
  let threshold = 0.5;
  let thresholdMethod: BinaryEvaluation['threshold_method'] = 'fixed';
  if (options.threshold !== undefined) {
    if (!Number.isFinite(options.threshold)) throw invalidInput('threshold must be a finite number');
    threshold = options.threshold;
  } else if (options.thresholdMethod !== undefined) {
    const choice = chooseThreshold(d.labels, d.scores, {
      method: options.thresholdMethod,
      ...(options.targetSensitivity !== undefined ? { targetSensitivity: options.targetSensitivity } : {}),
    });
    threshold = choice.threshold;
    thresholdMethod = choice.method;
  }
  const auc = rocAuc(d.labels, d.scores);
  const hasAuc = Number.isFinite(auc);
  const confusion = confusionAt(d.labels, d.scores, threshold);
  return {
    n: d.labels.length,
    positives: d.positives,
    auc: hasAuc ? auc : null,
    auc_ci:
      hasAuc && bootstrap > 0
        ? bootstrapAucCi(d.labels, d.scores, {
            n: bootstrap,
            seed: options.seed ?? 0,
            alpha: options.alpha ?? 0.05,
          })
        : null,
    ...classificationMetrics(confusion),
    threshold,
    threshold_method: thresholdMethod,
    confusion,
    roc: rocCurve(d.labels, d.scores, { maxPoints: options.rocMaxPoints ?? 200 }),
    calibration: cal,
  };
}
