/**
 * Small descriptive statistics and distribution functions shared by the metric
 * and drift modules. Inputs are plain array-likes; nothing here allocates more
 * than one copy of its input.
 */
import { invalidInput } from '../errors.js';

/** Arithmetic mean; NaN for an empty input. */
export function mean(values: ArrayLike<number>): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  let s = 0;
  for (let i = 0; i < n; i++) s += values[i];
  return s / n;
}

/**
 * Standard deviation (two-pass). `ddof = 0` (default) is the population
 * version, as `numpy.std`; `ddof = 1` the sample version. NaN when `n ≤ ddof`.
 */
export function std(values: ArrayLike<number>, ddof = 0): number {
  const n = values.length;
  if (n <= ddof) return Number.NaN;
  const m = mean(values);
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i] - m;
    ss += d * d;
  }
  return Math.sqrt(ss / (n - ddof));
}

/** Ascending sorted Float64Array copy. */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(values);
  out.sort();
  return out;
}

/**
 * Quantile of an ascending-sorted sample with linear interpolation between
 * order statistics (numpy's default `method='linear'`). `q` in [0, 1].
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = Math.min(Math.max(q, 0), 1) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const frac = pos - lo;
  const a = sorted[lo];
  const b = sorted[hi];
  return frac === 0 ? a : a + (b - a) * frac;
}

/**
 * Complementary error function (Numerical Recipes `erfcc`, Chebyshev fit):
 * relative error below 1.2e-7 everywhere, ample for p-values.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Standard normal cumulative distribution Φ(z). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Standard normal survival function 1 − Φ(z), accurate in the upper tail. */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/**
 * Survival function of the Kolmogorov distribution, Q(λ) = P(K > λ)
 * (scipy's `kstwobign.sf`). Uses the theta-function series for small λ and the
 * alternating series for large λ, so both tails are accurate.
 */
export function kolmogorovSf(lambda: number): number {
  if (!(lambda > 0)) return 1;
  if (lambda < 1.18) {
    // P(K ≤ λ) = √(2π)/λ · Σ_{k≥1} exp(−(2k−1)²π²/(8λ²))
    const c = -(Math.PI * Math.PI) / (8 * lambda * lambda);
    let sum = 0;
    for (let k = 1; k <= 20; k++) {
      const j = 2 * k - 1;
      const term = Math.exp(c * j * j);
      sum += term;
      if (term < 1e-17 * sum) break;
    }
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / lambda) * sum));
  }
  // Q(λ) = 2 Σ_{k≥1} (−1)^{k−1} exp(−2k²λ²)
  let sum = 0;
  let sign = 1;
  for (let k = 1; k <= 100; k++) {
    const term = Math.exp(-2 * k * k * lambda * lambda);
    sum += sign * term;
    if (term < 1e-17) break;
    sign = -sign;
  }
  return Math.min(1, Math.max(0, 2 * sum));
}

/**
 * Copies the finite numbers of `values` into a Float64Array.
 * @throws AppError INVALID_INPUT when `strict` and any value is not finite.
 */
export function finiteValues(values: ArrayLike<number>, what = 'values', strict = false): Float64Array {
  const out = new Float64Array(values.length);
  let k = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'number' && Number.isFinite(v)) out[k++] = v;
    else if (strict) throw invalidInput(`${what}[${i}] is not a finite number`);
  }
  return k === out.length ? out : out.slice(0, k);
}

/**
 * k-th smallest element (0-based) of `values`, reordering `values` in place
 * (Hoare quickselect, median-of-three pivot). O(n) on average.
 */
export function selectInPlace(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  if (k < 0 || k > hi) return Number.NaN;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Median of three as pivot value.
    let a = values[lo];
    let b = values[mid];
    const c = values[hi];
    if (a > b) [a, b] = [b, a];
    const pivot = c < a ? a : c > b ? b : c;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        const t = values[i];
        values[i] = values[j];
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k];
  }
  return values[k];
}
