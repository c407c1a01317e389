/**
 * Site calibration math: a temperature and an operating threshold fitted on one site's labelled
 * cases, binomial confidence intervals at the chosen point, and the sample sizes that make those
 * intervals usable. Pure functions; the orchestration (scoring through the serving path,
 * registering the calibrated version) lives in the model registry.
 *
 * Scale: a served model outputs a probability p (its training temperature, if any, is already in
 * the ONNX graph). The site temperature T acts on that probability's logit:
 * p' = sigmoid(logit(p) / T), with p clamped to [PROBABILITY_EPS, 1 − PROBABILITY_EPS] first so a
 * saturated float32 output has a finite logit. The deployment applies exactly
 * {@link applyServingTemperature}, so the threshold fitted here reproduces on the served values.
 */
import { AppError, invalidInput } from '../errors.js';
import { bootstrapAucCi, calibration as reliability, chooseThreshold, confusionAt, fitTemperature, rocAuc, sigmoid, type Confusion } from './metrics.js';

/** Clamp of probabilities before their logit (float32 sigmoid saturates at 1 − 6e-8). */
export const PROBABILITY_EPS = 1e-7;

/** logit(p) of a probability, clamped to [eps, 1 − eps]: |logit| ≤ 16.1. */
export function probabilityLogit(p: number): number {
  if (!Number.isFinite(p)) throw invalidInput(`probability ${p} is not finite`);
  const q = Math.min(1 - PROBABILITY_EPS, Math.max(PROBABILITY_EPS, p));
  return Math.log(q / (1 - q));
}

/**
 * The probability a model serves under a site temperature: sigmoid(logit(p) / T). A null or
 * unit temperature returns p unchanged (bit for bit).
 */
export function applyServingTemperature(p: number, temperature: number | null | undefined): number {
  if (temperature === null || temperature === undefined || temperature === 1) return p;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw invalidInput(`temperature ${temperature} must be a finite number > 0`);
  return sigmoid(probabilityLogit(p) / temperature);
}

/** Two-sided standard normal quantile z_{1−alpha/2} (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw invalidInput('normalQuantile needs 0 < p < 1');
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

export type CiMethod = 'wilson' | 'clopper-pearson';

/** A proportion k/n with its confidence interval. */
export interface Proportion {
  k: number;
  n: number;
  value: number;
  ci: [number, number];
  method: CiMethod;
  level: number;
}

function checkCounts(k: number, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw invalidInput(`n must be a positive integer, got ${n}`);
  if (!Number.isInteger(k) || k < 0 || k > n) throw invalidInput(`k must be an integer in [0, n], got ${k} of ${n}`);
}

/** Wilson score interval of k successes in n trials at level 1 − alpha. */
export function wilsonInterval(k: number, n: number, alpha = 0.05): [number, number] {
  checkCounts(k, n);
  const z = normalQuantile(1 - alpha / 2);
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = ((z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n)));
  return [k === 0 ? 0 : Math.max(0, centre - half), k === n ? 1 : Math.min(1, centre + half)];
}

/** log C(n, i) p^i (1−p)^(n−i), exact for p in (0, 1). */
function logBinomialPmf(n: number, i: number, p: number, logFact: Float64Array): number {
  return logFact[n]! - logFact[i]! - logFact[n - i]! + i * Math.log(p) + (n - i) * Math.log1p(-p);
}

/** P(X ≥ k) for X ~ Binomial(n, p). */
function upperTail(n: number, k: number, p: number, logFact: Float64Array): number {
  if (k <= 0) return 1;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  let s = 0;
  for (let i = k; i <= n; i++) s += Math.exp(logBinomialPmf(n, i, p, logFact));
  return Math.min(1, s);
}

function logFactorials(n: number): Float64Array {
  const f = new Float64Array(n + 1);
  for (let i = 2; i <= n; i++) f[i] = f[i - 1]! + Math.log(i);
  return f;
}

/** The p in [0, 1] where the increasing function g(p) crosses `target`, by bisection. */
function bisect(g: (p: number) => number, target: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 100 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (g(mid) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Exact (Clopper–Pearson) interval of k successes in n trials at level 1 − alpha: the lower end
 * solves P(X ≥ k | p) = alpha/2, the upper end P(X ≤ k | p) = alpha/2.
 */
export function clopperPearsonInterval(k: number, n: number, alpha = 0.05): [number, number] {
  checkCounts(k, n);
  if (!(alpha > 0 && alpha < 1)) throw invalidInput('alpha must be in (0, 1)');
  const logFact = logFactorials(n);
  const lower = k === 0 ? 0 : bisect((p) => upperTail(n, k, p, logFact), alpha / 2);
  // P(X ≤ k | p) = 1 − P(X ≥ k + 1 | p) decreases in p; solve 1 − that = 1 − alpha/2.
  const upper = k === n ? 1 : bisect((p) => upperTail(n, k + 1, p, logFact), 1 - alpha / 2);
  return [lower, upper];
}

/** k/n with a 95% (or 1 − alpha) interval by the chosen method. */
export function proportion(k: number, n: number, method: CiMethod = 'wilson', alpha = 0.05): Proportion {
  const ci = method === 'wilson' ? wilsonInterval(k, n, alpha) : clopperPearsonInterval(k, n, alpha);
  return { k, n, value: k / n, ci, method, level: 1 - alpha };
}

/**
 * The fewest cases n whose Wilson interval around a proportion p has a half-width ≤ `halfWidth`
 * (computed at the expected count p·n, which the width is continuous in). For p = 0.95 and
 * ±0.05 this is the number of positives a site needs to state its sensitivity to ±0.05.
 */
export function casesForHalfWidth(p: number, halfWidth: number, alpha = 0.05): number {
  if (!(p >= 0 && p <= 1)) throw invalidInput('p must be in [0, 1]');
  if (!(halfWidth > 0 && halfWidth < 0.5)) throw invalidInput('halfWidth must be in (0, 0.5)');
  const z = normalQuantile(1 - alpha / 2);
  const z2 = z * z;
  const half = (n: number) => (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  let hi = 1;
  while (half(hi) > halfWidth) hi *= 2;
  let lo = Math.max(1, hi / 2);
  if (half(lo) <= halfWidth) return Math.ceil(lo);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (half(mid) <= halfWidth) hi = mid;
    else lo = mid;
  }
  return hi;
}

export type SiteThresholdMethod = 'sensitivity' | 'youden';

export interface SiteCalibrationOptions {
  method: SiteThresholdMethod;
  /** For method 'sensitivity' (default 0.95). */
  targetSensitivity?: number;
  /** Fewest cases of each class to fit on (default {@link DEFAULT_MIN_CASES}). */
  minCases?: number;
  ciMethod?: CiMethod;
  /** Half-width the sample-size advice aims at (default 0.05). */
  halfWidth?: number;
  /** Bootstrap resamples of the AUC interval (default 1000; 0 = none). */
  bootstrap?: number;
  seed?: number;
}

/** Fewest positives and fewest negatives a site calibration fits on unless told otherwise. */
export const DEFAULT_MIN_CASES = 30;
/** The floor below which no threshold or temperature is fitted, whatever is asked. */
export const ABSOLUTE_MIN_CASES = 10;

export interface SampleSizeAdvice {
  half_width: number;
  /** Positives needed for a ±half_width interval at the achieved (or target) sensitivity. */
  positives_needed: number;
  /** Negatives needed for a ±half_width interval at the achieved specificity. */
  negatives_needed: number;
  positives: number;
  negatives: number;
  /** Both intervals are at most ±half_width wide on these data. */
  sufficient: boolean;
  /** The largest half-width of the two intervals on these data. */
  achieved_half_width: number;
}

export interface SiteCalibrationFit {
  n: number;
  positives: number;
  negatives: number;
  method: SiteThresholdMethod;
  target_sensitivity: number | null;
  temperature: number;
  nll_before: number;
  nll_after: number;
  ece_before: number;
  ece_after: number;
  /** On the calibrated probability scale, the one served. */
  threshold: number;
  auc: number;
  auc_ci: [number, number] | null;
  confusion: Confusion;
  sensitivity: Proportion;
  specificity: Proportion;
  sample_size: SampleSizeAdvice;
  min_cases: number;
}

/**
 * The site's counts against the minimum; throws TOO_FEW_CASES (422) with what is missing.
 * Call it before scoring (cheap) and again after (images that failed to decode drop out).
 */
export function requireEnoughCases(positives: number, negatives: number, minCases = DEFAULT_MIN_CASES, options: { targetSensitivity?: number; halfWidth?: number } = {}): void {
  if (!Number.isInteger(minCases) || minCases < ABSOLUTE_MIN_CASES) throw invalidInput(`min cases must be an integer ≥ ${ABSOLUTE_MIN_CASES}, got ${minCases}`);
  if (positives >= minCases && negatives >= minCases) return;
  const halfWidth = options.halfWidth ?? 0.05;
  const target = options.targetSensitivity ?? 0.95;
  const advice = { positives_for_sensitivity: casesForHalfWidth(target, halfWidth), negatives_for_specificity_0_9: casesForHalfWidth(0.9, halfWidth), half_width: halfWidth };
  throw new AppError(
    'TOO_FEW_CASES',
    `too few labelled cases to calibrate on: ${positives} PNEUMONIA and ${negatives} NORMAL, at least ${minCases} of each are needed (--min-cases). ` +
      `For a 95% interval of ±${halfWidth} at sensitivity ${target} a site needs about ${advice.positives_for_sensitivity} PNEUMONIA cases, and about ${advice.negatives_for_specificity_0_9} NORMAL cases at specificity 0.9.`,
    { positives, negatives, min_cases: minCases, needed: advice },
  );
}

function roundAway(threshold: number): number {
  // A threshold of exactly 0 or 1 breaks the serving contract (0 < t < 1).
  return Math.min(1 - 1e-12, Math.max(1e-12, threshold));
}

/**
 * Fits a site calibration on labelled raw probabilities (the model's outputs before any site
 * temperature): the temperature by NLL minimisation on the probabilities' logits, then the
 * threshold on the calibrated probabilities (target sensitivity or Youden's J), with
 * sensitivity/specificity and their intervals at that threshold.
 * @throws AppError TOO_FEW_CASES (422) below `minCases` of either class; INVALID_INPUT on bad input.
 */
export function fitSiteCalibration(labels: ArrayLike<number>, rawProbabilities: ArrayLike<number>, options: SiteCalibrationOptions): SiteCalibrationFit {
  if (labels.length !== rawProbabilities.length) throw invalidInput('labels and probabilities differ in length');
  let positives = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw invalidInput(`labels[${i}] must be 0 or 1`);
    positives += labels[i]!;
  }
  const negatives = labels.length - positives;
  const method = options.method;
  if (method !== 'sensitivity' && method !== 'youden') throw invalidInput(`unknown threshold method '${String(method)}'`);
  const target = method === 'sensitivity' ? (options.targetSensitivity ?? 0.95) : null;
  if (target !== null && !(target > 0 && target < 1)) throw invalidInput('target sensitivity must be in (0, 1)');
  const minCases = options.minCases ?? DEFAULT_MIN_CASES;
  const halfWidth = options.halfWidth ?? 0.05;
  requireEnoughCases(positives, negatives, minCases, { targetSensitivity: target ?? 0.95, halfWidth });

  const raw = Float64Array.from(rawProbabilities as ArrayLike<number>);
  for (let i = 0; i < raw.length; i++) if (!(raw[i]! >= 0 && raw[i]! <= 1)) throw invalidInput(`probability ${raw[i]} at ${i} is not in [0, 1]`);
  const logits = raw.map(probabilityLogit);
  const t = fitTemperature(labels, logits);
  const calibrated = raw.map((p) => applyServingTemperature(p, t.temperature));
  const choice = chooseThreshold(labels, calibrated, method === 'youden' ? { method: 'youden' } : { method: 'sensitivity', targetSensitivity: target! });
  const threshold = roundAway(choice.threshold);
  const confusion = confusionAt(labels, calibrated, threshold);
  const ciMethod = options.ciMethod ?? 'wilson';
  const sensitivity = proportion(confusion.tp, positives, ciMethod);
  const specificity = proportion(confusion.tn, negatives, ciMethod);
  const auc = rocAuc(labels, raw);
  const bootstrap = options.bootstrap ?? 1000;
  const aucCi = bootstrap > 0 ? bootstrapAucCi(labels, raw, { n: bootstrap, seed: options.seed ?? 0 }) : null;
  const half = (p: Proportion) => (p.ci[1] - p.ci[0]) / 2;
  const achieved = Math.max(half(sensitivity), half(specificity));
  return {
    n: labels.length,
    positives,
    negatives,
    method,
    target_sensitivity: target,
    temperature: t.temperature,
    nll_before: t.nllBefore,
    nll_after: t.nllAfter,
    ece_before: reliability(labels, raw).ece,
    ece_after: reliability(labels, calibrated).ece,
    threshold,
    auc,
    auc_ci: aucCi,
    confusion,
    sensitivity,
    specificity,
    sample_size: {
      half_width: halfWidth,
      positives_needed: casesForHalfWidth(target ?? sensitivity.value, halfWidth),
      negatives_needed: casesForHalfWidth(specificity.value, halfWidth),
      positives,
      negatives,
      sufficient: achieved <= halfWidth,
      achieved_half_width: achieved,
    },
    min_cases: minCases,
  };
}
