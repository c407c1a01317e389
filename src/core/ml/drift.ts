/**
 * Drift detectors used by the monitoring service: univariate tests on image
 * statistics (KS, Wasserstein, PSI — Evidently's defaults), multivariate tests
 * on compact embeddings (MMD permutation test — Alibi Detect's method; a
 * domain classifier), and prediction drift.
 */
import { invalidInput } from '../errors.js';
import { Rng } from './random.js';
import type { Seed } from './random.js';
import { rocAuc, sigmoid } from './metrics.js';
import { finiteValues, kolmogorovSf, mean, normalSf, quantileSorted, selectInPlace, std } from './stats.js';

/** Feature vectors: an array of rows, each a plain array or typed array of equal length. */
export type Matrix = ReadonlyArray<ArrayLike<number>>;

/**
 * How the KS p-value is computed:
 * - `'asymp'`: Kolmogorov distribution with Stephens' small-sample correction,
 *   `Q((en + 0.12 + 0.11/en)·D)`, `en = √(n·m/(n+m))` (Numerical Recipes `kstwo`;
 *   scipy < 1.5 `ks_2samp(mode='asymp')`).
 * - `'exact'`: exact null distribution of the two-sided statistic by lattice-path
 *   counting, O(n·m) time (scipy's `method='exact'`).
 * - `'auto'`: exact when max(n, m) ≤ 10 000 and n·m ≤ 10⁷, else asymp
 *   (scipy's default, which Evidently uses).
 */
export type KsMethod = 'asymp' | 'exact' | 'auto';

/** Two-sample Kolmogorov–Smirnov result. */
export interface KsResult {
  /** D = sup |F_a − F_b|. */
  statistic: number;
  pValue: number;
  /** The method actually used (`'auto'` resolved). */
  method: 'asymp' | 'exact';
}

/** One feature's verdict in {@link featureDrift}. */
export interface FeatureDriftResult {
  feature: string;
  /** KS when the reference is small, normed Wasserstein otherwise. */
  method: 'ks' | 'wasserstein';
  /** KS D, or Wasserstein distance divided by the reference std. */
  statistic: number;
  /** KS p-value (absent for Wasserstein). */
  pValue?: number;
  /** KS: significance level (drift when p < threshold); Wasserstein: drift when statistic ≥ threshold. */
  threshold: number;
  /** Population stability index, reported alongside (not used for the verdict). */
  psi: number;
  /**
   * The PSI's bins: interior `edges` at the reference deciles (ties merged; bin k holds values
   * < edges[k], the last one values ≥ the last edge) and the share of each sample per bin.
   */
  histogram: FeatureHistogram;
  drifted: boolean;
  /** Finite values used from the reference / current rows. */
  nRef: number;
  nCur: number;
}

/** Result of {@link featureDrift}. */
export interface DatasetDriftResult {
  features: FeatureDriftResult[];
  /** Fraction of features flagged as drifted. */
  driftedShare: number;
  /** `driftedShare ≥ datasetDriftShare` (Evidently's rule). */
  datasetDrift: boolean;
}

/** Options of {@link featureDrift}; defaults are Evidently's. */
export interface FeatureDriftOptions {
  /** Use KS while the reference has at most this many values (default 1000). */
  ksMaxRows?: number;
  /** KS significance level (default 0.05). */
  ksAlpha?: number;
  /** KS p-value method (default `'auto'`, as scipy/Evidently). */
  ksMethod?: KsMethod;
  /** Normed Wasserstein threshold (default 0.1). */
  wassersteinThreshold?: number;
  /** Share of drifted features that flags the dataset (default 0.5). */
  datasetDriftShare?: number;
  /** PSI bins (default 10). */
  psiBins?: number;
}

/** Result of {@link mmdTest}. */
export interface MmdResult {
  /** Unbiased estimate of MMD² with the RBF kernel. */
  mmd2: number;
  /** Permutation p-value, (1 + #{permuted ≥ observed}) / (1 + permutations). */
  pValue: number;
  /** RBF σ: k(x, y) = exp(−‖x − y‖² / (2σ²)). */
  bandwidth: number;
  /** pValue < alpha. */
  drifted: boolean;
  /** Rows used after subsampling. */
  nRef: number;
  nCur: number;
}

/** Result of {@link domainClassifierAuc}. */
export interface DomainClassifierResult {
  /** Mean cross-validated ROC AUC of reference-vs-current logistic regression. */
  auc: number;
  /**
   * One-sided p-value of the AUC under "no drift" (Mann–Whitney normal approximation,
   * SE = √((n₁+n₂+1)/(12·n₁·n₂))): small windows give noisy AUCs, so the threshold alone is not enough.
   */
  pValue: number;
  /** auc > aucThreshold (default 0.55) and pValue < alpha (default 0.05). */
  drifted: boolean;
  foldAucs: number[];
  nRef: number;
  nCur: number;
}

/** Result of {@link predictionDrift}. */
export interface PredictionDriftResult {
  threshold: number;
  refPositiveRate: number;
  curPositiveRate: number;
  /** Pooled two-proportion z statistic (current − reference). */
  positiveRateZ: number;
  /** Two-sided p-value of the z-test. */
  positiveRatePValue: number;
  /** KS test on the probability distributions. */
  ks: KsResult;
  /** Either p-value below alpha. */
  drifted: boolean;
}

/** Maps a feature vector of length `dim` to one of length `outDim`. */
export type Projection = (vector: ArrayLike<number>) => Float32Array;

function finiteSorted(values: ArrayLike<number>, what: string): Float64Array {
  const v = finiteValues(values, what);
  if (v.length === 0) throw invalidInput(`${what} has no finite values`);
  v.sort();
  return v;
}

/** sup-distance between the ECDFs, as the integer numerator over n·m. */
function ksNumerator(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  const m = b.length;
  let i = 0;
  let j = 0;
  let best = 0;
  while (i < n && j < m) {
    const v = Math.min(a[i], b[j]);
    while (i < n && a[i] <= v) i++;
    while (j < m && b[j] <= v) j++;
    const diff = Math.abs(i * m - j * n);
    if (diff > best) best = diff;
  }
  return best;
}

/**
 * P(D ≥ h/(n·m)) under H0 by counting monotone lattice paths that stay inside
 * |i·m − j·n| < h, as probabilities so nothing overflows.
 */
function ksExactSf(n: number, m: number, h: number): number {
  if (h <= 0) return 1;
  const row = new Float64Array(m + 1);
  row[0] = 1;
  for (let j = 1; j <= m; j++) row[j] = j * n >= h ? 0 : row[j - 1];
  for (let i = 1; i <= n; i++) {
    const im = i * m;
    if (im >= h) row[0] = 0;
    for (let j = 1; j <= m; j++) {
      const diff = im - j * n;
      if (diff >= h || -diff >= h) row[j] = 0;
      else row[j] = (row[j] * i + row[j - 1] * j) / (i + j);
    }
  }
  return Math.min(1, Math.max(0, 1 - row[m]));
}

function ksFromSorted(a: Float64Array, b: Float64Array, method: KsMethod): KsResult {
  const n = a.length;
  const m = b.length;
  const h = ksNumerator(a, b);
  const statistic = h / (n * m);
  const exact = method === 'exact' || (method === 'auto' && Math.max(n, m) <= 10000 && n * m <= 1e7);
  if (exact) return { statistic, pValue: ksExactSf(n, m, h), method: 'exact' };
  const en = Math.sqrt((n * m) / (n + m));
  return { statistic, pValue: kolmogorovSf((en + 0.12 + 0.11 / en) * statistic), method: 'asymp' };
}

/**
 * Two-sample two-sided Kolmogorov–Smirnov test. The statistic equals scipy's
 * `ks_2samp(a, b).statistic`; see {@link KsMethod} for the p-value (default
 * `'asymp'`). Non-finite values are ignored.
 *
 * @throws AppError INVALID_INPUT when a sample has no finite values.
 */
export function ksTest(a: ArrayLike<number>, b: ArrayLike<number>, options: { method?: KsMethod } = {}): KsResult {
  return ksFromSorted(finiteSorted(a, 'a'), finiteSorted(b, 'b'), options.method ?? 'asymp');
}

function wassersteinSorted(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  const m = b.length;
  let i = 0;
  let j = 0;
  let prev = Math.min(a[0], b[0]);
  let w = 0;
  while (i < n || j < m) {
    const v = i < n && (j >= m || a[i] <= b[j]) ? a[i] : b[j];
    w += Math.abs(i / n - j / m) * (v - prev);
    while (i < n && a[i] <= v) i++;
    while (j < m && b[j] <= v) j++;
    prev = v;
  }
  return w;
}

/**
 * 1-D Wasserstein-1 (earth mover's) distance ∫|F_a − F_b| between the
 * empirical distributions (scipy's `wasserstein_distance`). Non-finite values
 * are ignored.
 *
 * @throws AppError INVALID_INPUT when a sample has no finite values.
 */
export function wassersteinDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return wassersteinSorted(finiteSorted(a, 'a'), finiteSorted(b, 'b'));
}

/**
 * Wasserstein distance divided by the reference's population std, floored at
 * 0.001 so a constant reference does not divide by zero (Evidently's
 * `wasserstein` stattest, whose default drift threshold is 0.1).
 */
export function normedWasserstein(ref: ArrayLike<number>, cur: ArrayLike<number>): number {
  const r = finiteSorted(ref, 'ref');
  return wassersteinSorted(r, finiteSorted(cur, 'cur')) / Math.max(std(r), 0.001);
}

/** Reference and current samples over the same bins (see {@link FeatureDriftResult.histogram}). */
export interface FeatureHistogram {
  edges: number[];
  reference: number[];
  current: number[];
}

function quantileHistogram(ref: Float64Array, cur: Float64Array, bins: number): FeatureHistogram {
  // Interior edges at the reference quantiles; duplicates (ties) collapse.
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) {
    const q = quantileSorted(ref, k / bins);
    if (edges.length === 0 || q > edges[edges.length - 1]) edges.push(q);
  }
  const proportions = (sorted: Float64Array): number[] => {
    const p = new Array<number>(edges.length + 1).fill(0);
    let start = 0;
    for (let e = 0; e < edges.length; e++) {
      // Bin e holds values < edges[e]; the last bin holds everything ≥ the last edge.
      let lo = start;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sorted[mid] < edges[e]) lo = mid + 1;
        else hi = mid;
      }
      p[e] = (lo - start) / sorted.length;
      start = lo;
    }
    p[edges.length] = (sorted.length - start) / sorted.length;
    return p;
  };
  return { edges, reference: proportions(ref), current: proportions(cur) };
}

function psiOfHistogram(h: FeatureHistogram): number {
  // Empty bins get a small floor (as Evidently) so the log stays finite.
  const floor = (x: number) => (x === 0 ? 1e-4 : x);
  let s = 0;
  for (let k = 0; k < h.reference.length; k++) {
    const r = floor(h.reference[k]!);
    const c = floor(h.current[k]!);
    s += (c - r) * Math.log(c / r);
  }
  return s;
}

/**
 * Population stability index Σ (c − r)·ln(c / r) over `bins` quantile bins of
 * the reference (ties merge bins; empty bins are floored at 1e-4). Rule of
 * thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
 *
 * @throws AppError INVALID_INPUT when a sample has no finite values or bins < 2.
 */
export function psi(ref: ArrayLike<number>, cur: ArrayLike<number>, options: { bins?: number } = {}): number {
  const bins = options.bins ?? 10;
  if (!Number.isInteger(bins) || bins < 2) throw invalidInput('psi bins must be an integer ≥ 2');
  return psiOfHistogram(quantileHistogram(finiteSorted(ref, 'ref'), finiteSorted(cur, 'cur'), bins));
}

function column<K extends string>(rows: ReadonlyArray<{ readonly [P in K]?: unknown }>, feature: K): Float64Array {
  const out = new Float64Array(rows.length);
  let k = 0;
  for (const row of rows) {
    const v = row[feature];
    if (typeof v === 'number' && Number.isFinite(v)) out[k++] = v;
  }
  return out.slice(0, k).sort();
}

/**
 * Per-feature drift between reference and current rows, with Evidently's
 * defaults for numeric columns: KS (p < ksAlpha) while the reference has at
 * most `ksMaxRows` values, normed Wasserstein (≥ wassersteinThreshold) above;
 * PSI is reported for every feature. Rows may hold other properties; only
 * finite numbers of the listed features are used.
 *
 * @example
 * featureDrift(refStats, windowStats, ['mean_intensity', 'contrast']).datasetDrift
 * @throws AppError INVALID_INPUT when `features` is empty or a feature has no
 *   finite value on either side.
 */
export function featureDrift<K extends string>(
  refRows: ReadonlyArray<{ readonly [P in K]?: unknown }>,
  curRows: ReadonlyArray<{ readonly [P in K]?: unknown }>,
  features: readonly K[],
  options: FeatureDriftOptions = {},
): DatasetDriftResult {
  const ksMaxRows = options.ksMaxRows ?? 1000;
  const ksAlpha = options.ksAlpha ?? 0.05;
  const wThreshold = options.wassersteinThreshold ?? 0.1;
  const share = options.datasetDriftShare ?? 0.5;
  if (features.length === 0) throw invalidInput('featureDrift needs at least one feature');
  const results: FeatureDriftResult[] = features.map((feature) => {
    const ref = column(refRows, feature);
    const cur = column(curRows, feature);
    if (ref.length === 0 || cur.length === 0) {
      throw invalidInput(`feature '${feature}' has no finite values in the ${ref.length === 0 ? 'reference' : 'current'} rows`);
    }
    const histogram = quantileHistogram(ref, cur, options.psiBins ?? 10);
    const psiValue = psiOfHistogram(histogram);
    if (ref.length <= ksMaxRows) {
      const ks = ksFromSorted(ref, cur, options.ksMethod ?? 'auto');
      return {
        feature,
        method: 'ks',
        statistic: ks.statistic,
        pValue: ks.pValue,
        threshold: ksAlpha,
        psi: psiValue,
        histogram,
        drifted: ks.pValue < ksAlpha,
        nRef: ref.length,
        nCur: cur.length,
      };
    }
    const statistic = wassersteinSorted(ref, cur) / Math.max(std(ref), 0.001);
    return {
      feature,
      method: 'wasserstein',
      statistic,
      threshold: wThreshold,
      psi: psiValue,
      histogram,
      drifted: statistic >= wThreshold,
      nRef: ref.length,
      nCur: cur.length,
    };
  });
  const driftedShare = results.filter((r) => r.drifted).length / results.length;
  return { features: results, driftedShare, datasetDrift: driftedShare >= share };
}

/** Copies (optionally a subset of) rows into one row-major Float64Array. */
function flatten(rows: Matrix, what: string, pick?: Uint32Array): { data: Float64Array; n: number; d: number } {
  if (rows.length === 0) throw invalidInput(`${what} has no rows`);
  const d = rows[0].length;
  if (d === 0) throw invalidInput(`${what} rows are empty`);
  const n = pick ? pick.length : rows.length;
  const data = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    const src = rows[pick ? pick[r] : r];
    if (src.length !== d) throw invalidInput(`${what} rows differ in length (${d} vs ${src.length})`);
    for (let k = 0; k < d; k++) {
      const v = src[k];
      if (!Number.isFinite(v)) throw invalidInput(`${what} holds a non-finite value`);
      data[r * d + k] = v;
    }
  }
  return { data, n, d };
}

/** N×N matrix whose upper triangle (i < j) holds squared Euclidean distances of the rows of z. */
function upperSquaredDistances(z: Float64Array, N: number, d: number): Float64Array {
  const K = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    const oi = i * d;
    const ok = i * N;
    let j = i + 1;
    // Four columns at a time so each z[i] value is loaded once per four pairs.
    for (; j + 3 < N; j += 4) {
      const o0 = j * d;
      const o1 = o0 + d;
      const o2 = o1 + d;
      const o3 = o2 + d;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < d; k++) {
        const x = z[oi + k];
        let q = x - z[o0 + k];
        s0 += q * q;
        q = x - z[o1 + k];
        s1 += q * q;
        q = x - z[o2 + k];
        s2 += q * q;
        q = x - z[o3 + k];
        s3 += q * q;
      }
      K[ok + j] = s0;
      K[ok + j + 1] = s1;
      K[ok + j + 2] = s2;
      K[ok + j + 3] = s3;
    }
    for (; j < N; j++) {
      const oj = j * d;
      let s = 0;
      for (let k = 0; k < d; k++) {
        const q = z[oi + k] - z[oj + k];
        s += q * q;
      }
      K[ok + j] = s;
    }
  }
  return K;
}

/**
 * For `count` groups of `g` sorted row indices (back to back in `groups`),
 * Σ_{a<b} K[G_a, G_b] over the upper triangle of K. All groups are summed in
 * one pass over the rows, so each kernel row is loaded from memory once
 * instead of once per group.
 */
function groupPairSums(K: Float64Array, N: number, groups: Uint32Array, g: number, count: number): Float64Array {
  const member = new Uint8Array(N * count);
  for (let p = 0; p < count; p++) for (let a = 0; a < g; a++) member[groups[p * g + a] * count + p] = 1;
  const sums = new Float64Array(count);
  const position = new Int32Array(count);
  for (let i = 0; i < N; i++) {
    const oi = i * N;
    const om = i * count;
    for (let p = 0; p < count; p++) {
      if (member[om + p] === 0) continue;
      const end = (p + 1) * g;
      let s = 0;
      for (let b = p * g + position[p] + 1; b < end; b++) s += K[oi + groups[b]];
      sums[p] += s;
      position[p]++;
    }
  }
  return sums;
}

function subsample(rows: Matrix, max: number, rng: Rng): Uint32Array | undefined {
  return rows.length > max ? rng.sampleIndices(rows.length, max) : undefined;
}

/**
 * Maximum mean discrepancy two-sample test with an RBF kernel (Alibi Detect's
 * `MMDDrift`): σ from the median heuristic on the reference
 * (σ² = median of pairwise squared distances / 2), unbiased MMD², and a
 * permutation p-value. The kernel matrix is computed once (upper triangle of
 * an (n+m)² Float64Array); each permutation only re-sums the smaller group's
 * block, and all permutations share one pass over the matrix, so 1000 + 1000
 * rows of 64-d with 200 permutations take about half a second.
 *
 * Rows beyond `maxSamples` (default 1000, at most 3000) per side are subsampled.
 *
 * @throws AppError INVALID_INPUT on fewer than 2 rows per side, ragged or
 *   non-finite rows, different dimensions, or invalid options.
 */
export function mmdTest(
  X: Matrix,
  Y: Matrix,
  options: { permutations?: number; seed?: Seed; maxSamples?: number; alpha?: number } = {},
): MmdResult {
  const permutations = options.permutations ?? 200;
  const maxSamples = options.maxSamples ?? 1000;
  const alpha = options.alpha ?? 0.05;
  if (!Number.isInteger(permutations) || permutations < 1) throw invalidInput('permutations must be an integer ≥ 1');
  if (!Number.isInteger(maxSamples) || maxSamples < 2 || maxSamples > 3000) {
    throw invalidInput('maxSamples must be an integer in [2, 3000]');
  }
  if (X.length < 2 || Y.length < 2) throw invalidInput('mmdTest needs at least 2 rows on each side');
  const rng = new Rng(options.seed ?? 0);
  const xs = flatten(X, 'X', subsample(X, maxSamples, rng));
  const ys = flatten(Y, 'Y', subsample(Y, maxSamples, rng));
  if (xs.d !== ys.d) throw invalidInput(`X and Y differ in dimension (${xs.d} vs ${ys.d})`);
  const n = xs.n;
  const m = ys.n;
  const d = xs.d;
  const N = n + m;
  const z = new Float64Array(N * d);
  z.set(xs.data, 0);
  z.set(ys.data, n * d);

  // Only the upper triangle (i < j) of the kernel matrix is filled and read.
  const K = upperSquaredDistances(z, N, d);
  const pairs = (n * (n - 1)) / 2;
  const refDist = new Float64Array(pairs);
  for (let i = 0, p = 0; i < n; i++) for (let j = i + 1; j < n; j++) refDist[p++] = K[i * N + j];
  let med = selectInPlace(refDist, Math.floor((pairs - 1) / 2));
  if (!(med > 0)) {
    // Degenerate reference (mostly duplicates): fall back to the mean positive distance.
    let s = 0;
    let c = 0;
    for (let i = 0; i < N; i++) {
      for (let j = i + 1; j < N; j++) {
        if (K[i * N + j] > 0) {
          s += K[i * N + j];
          c++;
        }
      }
    }
    med = c > 0 ? s / c : 1;
  }
  const sigma2 = med / 2;
  const scale = -1 / (2 * sigma2);
  const rowSum = new Float64Array(N);
  let total = 0;
  for (let i = 0; i < N; i++) {
    const oi = i * N;
    for (let j = i + 1; j < N; j++) {
      const v = Math.exp(K[oi + j] * scale);
      K[oi + j] = v;
      rowSum[i] += v;
      rowSum[j] += v;
      total += 2 * v;
    }
  }

  // MMD² of a split into a group of size g (sorted indices) and the rest.
  const g = Math.min(n, m);
  const groupIsX = n <= m;
  const mmd2Of = (group: Uint32Array, pairSum: number): number => {
    let rows = 0;
    for (let a = 0; a < g; a++) rows += rowSum[group[a]];
    const sGG = 2 * pairSum;
    const cross = rows - sGG;
    const sOO = total - 2 * cross - sGG;
    const sXX = groupIsX ? sGG : sOO;
    const sYY = groupIsX ? sOO : sGG;
    return sXX / (n * (n - 1)) + sYY / (m * (m - 1)) - (2 * cross) / (n * m);
  };

  const observed = Uint32Array.from({ length: g }, (_, a) => (groupIsX ? a : n + a));
  const mmd2 = mmd2Of(observed, groupPairSums(K, N, observed, g, 1)[0]);
  const perm = new Uint32Array(N);
  for (let i = 0; i < N; i++) perm[i] = i;
  let exceed = 0;
  const chunk = 128;
  for (let done = 0; done < permutations; done += chunk) {
    const count = Math.min(chunk, permutations - done);
    const groups = new Uint32Array(count * g);
    for (let p = 0; p < count; p++) {
      // Partial Fisher–Yates: the first g entries become a uniform random subset.
      for (let a = 0; a < g; a++) {
        const b = a + rng.int(N - a);
        const t = perm[a];
        perm[a] = perm[b];
        perm[b] = t;
      }
      const group = groups.subarray(p * g, (p + 1) * g);
      group.set(perm.subarray(0, g));
      group.sort();
    }
    const sums = groupPairSums(K, N, groups, g, count);
    for (let p = 0; p < count; p++) {
      if (mmd2Of(groups.subarray(p * g, (p + 1) * g), sums[p]) >= mmd2) exceed++;
    }
  }
  const pValue = (1 + exceed) / (1 + permutations);
  return { mmd2, pValue, bandwidth: Math.sqrt(sigma2), drifted: pValue < alpha, nRef: n, nCur: m };
}

/** L2-regularised logistic regression by accelerated gradient descent; returns [w…, b]. */
function fitLogistic(
  x: Float64Array,
  y: Uint8Array,
  rows: Uint32Array,
  d: number,
  l2: number,
  iterations: number,
): Float64Array {
  const n = rows.length;
  // Step 1/L with L = λ_max([X 1]ᵀ[X 1]/n)/4 + l2, λ_max by power iteration.
  let v = new Float64Array(d + 1).fill(1 / Math.sqrt(d + 1));
  let lambda = 1;
  const tmp = new Float64Array(n);
  for (let it = 0; it < 20; it++) {
    for (let r = 0; r < n; r++) {
      const o = rows[r] * d;
      let s = v[d];
      for (let k = 0; k < d; k++) s += x[o + k] * v[k];
      tmp[r] = s;
    }
    const next = new Float64Array(d + 1);
    for (let r = 0; r < n; r++) {
      const o = rows[r] * d;
      const t = tmp[r];
      for (let k = 0; k < d; k++) next[k] += x[o + k] * t;
      next[d] += t;
    }
    let norm = 0;
    for (let k = 0; k <= d; k++) norm += next[k] * next[k];
    norm = Math.sqrt(norm);
    if (norm === 0) break;
    lambda = norm / n;
    for (let k = 0; k <= d; k++) next[k] /= norm;
    v = next;
  }
  const step = 1 / (lambda * 0.25 * 1.05 + l2);
  let w = new Float64Array(d + 1);
  let look = new Float64Array(d + 1);
  let t = 1;
  const grad = new Float64Array(d + 1);
  for (let it = 0; it < iterations; it++) {
    grad.fill(0);
    for (let r = 0; r < n; r++) {
      const i = rows[r];
      const o = i * d;
      let s = look[d];
      for (let k = 0; k < d; k++) s += x[o + k] * look[k];
      const e = (sigmoid(s) - y[i]) / n;
      for (let k = 0; k < d; k++) grad[k] += e * x[o + k];
      grad[d] += e;
    }
    let gradNorm2 = 0;
    for (let k = 0; k <= d; k++) {
      if (k < d) grad[k] += l2 * look[k];
      gradNorm2 += grad[k] * grad[k];
    }
    if (gradNorm2 < 1e-14) {
      w = look;
      break;
    }
    const wNext = new Float64Array(d + 1);
    for (let k = 0; k <= d; k++) wNext[k] = look[k] - step * grad[k];
    const tNext = (1 + Math.sqrt(1 + 4 * t * t)) / 2;
    const momentum = (t - 1) / tNext;
    const lookNext = new Float64Array(d + 1);
    for (let k = 0; k <= d; k++) lookNext[k] = wNext[k] + momentum * (wNext[k] - w[k]);
    w = wNext;
    look = lookNext;
    t = tNext;
  }
  return w;
}

/**
 * Domain-classifier drift test: an L2-regularised logistic regression
 * (standardised features, accelerated gradient descent) learns to tell
 * reference rows (0) from current rows (1); the mean stratified k-fold ROC AUC
 * is ≈ 0.5 without drift. Defaults: 5 folds, 200 iterations (stopping early
 * once the gradient vanishes), L2 = 0.01, drift when AUC > 0.55; rows beyond
 * `maxSamples` (default 1000) per side are subsampled.
 *
 * @throws AppError INVALID_INPUT on ragged/non-finite rows, different
 *   dimensions, or fewer than 2 rows per side.
 */
export function domainClassifierAuc(
  X: Matrix,
  Y: Matrix,
  options: {
    folds?: number;
    seed?: Seed;
    iterations?: number;
    l2?: number;
    aucThreshold?: number;
    alpha?: number;
    maxSamples?: number;
  } = {},
): DomainClassifierResult {
  const iterations = options.iterations ?? 200;
  const l2 = options.l2 ?? 1e-2;
  const aucThreshold = options.aucThreshold ?? 0.55;
  const alpha = options.alpha ?? 0.05;
  const maxSamples = options.maxSamples ?? 1000;
  if (X.length < 2 || Y.length < 2) throw invalidInput('domainClassifierAuc needs at least 2 rows on each side');
  const rng = new Rng(options.seed ?? 0);
  const xs = flatten(X, 'X', subsample(X, maxSamples, rng));
  const ys = flatten(Y, 'Y', subsample(Y, maxSamples, rng));
  if (xs.d !== ys.d) throw invalidInput(`X and Y differ in dimension (${xs.d} vs ${ys.d})`);
  const d = xs.d;
  const N = xs.n + ys.n;
  const data = new Float64Array(N * d);
  data.set(xs.data, 0);
  data.set(ys.data, xs.n * d);
  const labels = new Uint8Array(N).fill(1, xs.n);
  const folds = Math.min(options.folds ?? 5, xs.n, ys.n);
  if (!Number.isInteger(folds) || folds < 2) throw invalidInput('folds must be an integer ≥ 2');

  // Stratified folds: shuffle each class, deal round-robin.
  const foldOf = new Uint8Array(N);
  for (const [start, count] of [
    [0, xs.n],
    [xs.n, ys.n],
  ] as const) {
    const idx = rng.shuffle(Uint32Array.from({ length: count }, (_, i) => start + i));
    idx.forEach((row, k) => (foldOf[row] = k % folds));
  }

  const foldAucs: number[] = [];
  const z = new Float64Array(N * d);
  for (let f = 0; f < folds; f++) {
    const train: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < N; i++) (foldOf[i] === f ? test : train).push(i);
    // Standardise with training statistics.
    const mu = new Float64Array(d);
    const sd = new Float64Array(d);
    for (const i of train) for (let k = 0; k < d; k++) mu[k] += data[i * d + k];
    for (let k = 0; k < d; k++) mu[k] /= train.length;
    for (const i of train) {
      for (let k = 0; k < d; k++) {
        const t = data[i * d + k] - mu[k];
        sd[k] += t * t;
      }
    }
    for (let k = 0; k < d; k++) sd[k] = Math.sqrt(sd[k] / train.length) || 1;
    for (let i = 0; i < N; i++) for (let k = 0; k < d; k++) z[i * d + k] = (data[i * d + k] - mu[k]) / sd[k];
    const w = fitLogistic(z, labels, Uint32Array.from(train), d, l2, iterations);
    const testLabels = new Uint8Array(test.length);
    const testScores = new Float64Array(test.length);
    test.forEach((i, r) => {
      let s = w[d];
      for (let k = 0; k < d; k++) s += z[i * d + k] * w[k];
      testLabels[r] = labels[i];
      testScores[r] = s;
    });
    foldAucs.push(rocAuc(testLabels, testScores));
  }
  const auc = mean(foldAucs);
  const se = Math.sqrt((xs.n + ys.n + 1) / (12 * xs.n * ys.n));
  const pValue = normalSf((auc - 0.5) / se);
  return { auc, pValue, drifted: auc > aucThreshold && pValue < alpha, foldAucs, nRef: xs.n, nCur: ys.n };
}

/**
 * A fixed Gaussian random projection ℝ^dim → ℝ^outDim (entries N(0, 1/outDim),
 * so squared norms and distances are preserved in expectation —
 * Johnson–Lindenstrauss). The same (dim, outDim, seed) always gives the same
 * projection, so stored embeddings stay comparable across restarts.
 *
 * @throws AppError INVALID_INPUT on non-positive sizes, or (from the returned
 *   function) a vector whose length is not `dim`.
 */
export function randomProjection(dim: number, outDim = 64, seed: Seed = 0): Projection {
  if (!Number.isInteger(dim) || dim < 1 || !Number.isInteger(outDim) || outDim < 1) {
    throw invalidInput('randomProjection needs positive integer dimensions');
  }
  const rng = new Rng(seed);
  const scale = 1 / Math.sqrt(outDim);
  const matrix = new Float32Array(dim * outDim);
  for (let i = 0; i < matrix.length; i++) matrix[i] = rng.normal() * scale;
  return (vector: ArrayLike<number>): Float32Array => {
    if (vector.length !== dim) throw invalidInput(`expected a vector of length ${dim}, got ${vector.length}`);
    const out = new Float32Array(outDim);
    for (let o = 0; o < outDim; o++) {
      const off = o * dim;
      let s = 0;
      for (let k = 0; k < dim; k++) s += matrix[off + k] * vector[k];
      out[o] = s;
    }
    return out;
  };
}

/**
 * Prediction drift between two windows of positive-class probabilities:
 * the positive rate at `threshold` (pooled two-proportion z-test) and the
 * whole probability distribution (KS, `'auto'` method).
 *
 * @throws AppError INVALID_INPUT when a window has no finite values.
 */
export function predictionDrift(
  refProbs: ArrayLike<number>,
  curProbs: ArrayLike<number>,
  options: { threshold?: number; alpha?: number } = {},
): PredictionDriftResult {
  const threshold = options.threshold ?? 0.5;
  const alpha = options.alpha ?? 0.05;
  const ref = finiteSorted(refProbs, 'refProbs');
  const cur = finiteSorted(curProbs, 'curProbs');
  const positives = (v: Float64Array): number => v.reduce((c, p) => c + (p >= threshold ? 1 : 0), 0);
  const x1 = positives(ref);
  const x2 = positives(cur);
  const p1 = x1 / ref.length;
  const p2 = x2 / cur.length;
  const pooled = (x1 + x2) / (ref.length + cur.length);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / ref.length + 1 / cur.length));
  const zStat = se > 0 ? (p2 - p1) / se : 0;
  const pz = Math.min(1, 2 * normalSf(Math.abs(zStat)));
  const ks = ksFromSorted(ref, cur, 'auto');
  return {
    threshold,
    refPositiveRate: p1,
    curPositiveRate: p2,
    positiveRateZ: zStat,
    positiveRatePValue: pz,
    ks,
    drifted: pz < alpha || ks.pValue < alpha,
  };
}

