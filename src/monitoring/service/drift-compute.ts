/**
 * The drift detectors applied to one reference and one current window. Pure functions of plain
 * data (structured-clone friendly), so they run unchanged in a worker thread or inline.
 */
import { domainClassifierAuc, featureDrift, mmdTest, predictionDrift } from '../../core/ml/drift.js';
import type { DriftCheck, FeatureCheck, StatsRow } from '../store/types.js';

export interface DriftOptions {
  /** KS while the reference has at most this many rows, normed Wasserstein above (Evidently: 1000). */
  ksMaxRows: number;
  ksAlpha: number;
  wassersteinThreshold: number;
  /** Dataset drift when this share of features drifts (Evidently: 0.5). */
  datasetDriftShare: number;
  mmdAlpha: number;
  mmdPermutations: number;
  /** Rows per side used by MMD. */
  mmdSamples: number;
  /** Domain-classifier AUC above which embeddings drift (Evidently: 0.55). */
  classifierAucThreshold: number;
  /** The AUC must also be significantly above 0.5 at this level (small windows give noisy AUCs). */
  classifierAlpha: number;
  classifierSamples: number;
  predictionAlpha: number;
  /** Fewest rows per side for a detector to run. */
  minRows: number;
  /** Image-statistic features to test (default: every numeric key with enough values on both sides). */
  features?: string[];
}

/** One side of a comparison. */
export interface DriftSide {
  stats: StatsRow[];
  embeddings: number[][];
  probabilities: number[];
  /** Decision threshold for the positive rate. */
  threshold: number;
}

export interface DriftComputation {
  checks: DriftCheck[];
  features: FeatureCheck[];
}

export type DriftStep = 'data' | 'embedding_mmd' | 'embedding_classifier' | 'prediction';
/** Report order of the detector groups. */
export const DRIFT_STEPS: readonly DriftStep[] = ['data', 'embedding_mmd', 'embedding_classifier', 'prediction'];

/** The part of a side a step reads (so only that crosses to a worker thread). */
export function sideFor(step: DriftStep, side: DriftSide): DriftSide {
  switch (step) {
    case 'data':
      return { stats: side.stats, embeddings: [], probabilities: [], threshold: side.threshold };
    case 'embedding_mmd':
    case 'embedding_classifier':
      return { stats: [], embeddings: side.embeddings, probabilities: [], threshold: side.threshold };
    case 'prediction':
      return { stats: [], embeddings: [], probabilities: side.probabilities, threshold: side.threshold };
  }
}

/** Largest n·m for which KS p-values are computed exactly. */
export const EXACT_KS_MAX_PAIRS = 1_000_000;

const round6 = (x: number) => Number(x.toPrecision(6));

function countFinite(rows: StatsRow[], key: string): number {
  let n = 0;
  for (const r of rows) if (Number.isFinite(r[key])) n++;
  return n;
}

/** Numeric keys with at least `minRows` finite values on both sides, sorted. */
export function selectFeatures(ref: StatsRow[], cur: StatsRow[], minRows: number): string[] {
  const keys = new Set<string>();
  for (const rows of [ref, cur]) {
    const step = Math.max(1, Math.floor(rows.length / 200));
    for (let i = 0; i < rows.length; i += step) for (const k of Object.keys(rows[i]!)) keys.add(k);
  }
  return [...keys].filter((k) => countFinite(ref, k) >= minRows && countFinite(cur, k) >= minRows).sort();
}

function dataDrift(ref: DriftSide, cur: DriftSide, o: DriftOptions): DriftComputation {
  const features = o.features?.length ? o.features : selectFeatures(ref.stats, cur.stats, o.minRows);
  const base = { detector: 'data' as const, threshold: o.datasetDriftShare, rule: 'share of drifted features >= threshold' };
  if (features.length === 0) {
    return { checks: [{ ...base, method: 'feature_tests', statistic: null, p_value: null, drifted: false, skipped: 'no image statistics with enough values on both sides' }], features: [] };
  }
  // Exact KS p-values cost O(n·m) per feature; above 10⁶ pairs the (Stephens-corrected)
  // asymptotic distribution is used, which agrees with the exact one to well below alpha there.
  const ksMethod = ref.stats.length * cur.stats.length > EXACT_KS_MAX_PAIRS ? 'asymp' : 'exact';
  const result = featureDrift(ref.stats, cur.stats, features, {
    ksMethod,
    ksMaxRows: o.ksMaxRows,
    ksAlpha: o.ksAlpha,
    wassersteinThreshold: o.wassersteinThreshold,
    datasetDriftShare: o.datasetDriftShare,
  });
  const featureChecks: FeatureCheck[] = result.features.map((f) => ({
    feature: f.feature,
    method: f.method,
    statistic: f.statistic,
    p_value: f.pValue ?? null,
    threshold: f.threshold,
    psi: f.psi,
    histogram: { edges: f.histogram.edges.map(round6), reference: f.histogram.reference.map(round6), current: f.histogram.current.map(round6) },
    drifted: f.drifted,
    n_reference: f.nRef,
    n_current: f.nCur,
  }));
  const methods = [...new Set(featureChecks.map((f) => f.method))].join('+');
  return {
    checks: [
      {
        ...base,
        method: `share_of_drifted_features(${methods})`,
        statistic: result.driftedShare,
        p_value: null,
        drifted: result.datasetDrift,
        details: {
          drifted_features: featureChecks.filter((f) => f.drifted).map((f) => f.feature),
          n_features: featureChecks.length,
          ks_alpha: o.ksAlpha,
          ks_p_value: methods.includes('ks') ? ksMethod : null,
          wasserstein_threshold: o.wassersteinThreshold,
        },
      },
    ],
    features: featureChecks,
  };
}

function embeddingCheck(which: 'embedding_mmd' | 'embedding_classifier', ref: DriftSide, cur: DriftSide, o: DriftOptions, seed: string): DriftComputation {
  const base =
    which === 'embedding_mmd'
      ? { detector: which, method: 'mmd_rbf_permutation', threshold: o.mmdAlpha, rule: 'p_value < threshold' }
      : { detector: which, method: 'domain_classifier_auc', threshold: o.classifierAucThreshold, rule: 'statistic > threshold and p_value < alpha' };
  const skip = (reason: string): DriftComputation => ({ checks: [{ ...base, statistic: null, p_value: null, drifted: false, skipped: reason }], features: [] });
  const nRef = ref.embeddings.length;
  const nCur = cur.embeddings.length;
  if (nRef < o.minRows || nCur < o.minRows) return skip(`too few embeddings (reference ${nRef}, current ${nCur}; need ${o.minRows})`);
  const dim = ref.embeddings[0]!.length;
  if (cur.embeddings.some((e) => e.length !== dim) || ref.embeddings.some((e) => e.length !== dim)) {
    return skip(`embeddings differ in dimension (reference ${dim})`);
  }
  if (which === 'embedding_mmd') {
    const mmd = mmdTest(ref.embeddings, cur.embeddings, { permutations: o.mmdPermutations, seed, maxSamples: Math.min(o.mmdSamples, 3000), alpha: o.mmdAlpha });
    return {
      checks: [
        {
          ...base,
          statistic: mmd.mmd2,
          p_value: mmd.pValue,
          drifted: mmd.drifted,
          details: { bandwidth: mmd.bandwidth, permutations: o.mmdPermutations, n_reference: mmd.nRef, n_current: mmd.nCur, dim },
        },
      ],
      features: [],
    };
  }
  const dc = domainClassifierAuc(ref.embeddings, cur.embeddings, { seed, aucThreshold: o.classifierAucThreshold, alpha: o.classifierAlpha, maxSamples: o.classifierSamples });
  return {
    checks: [
      {
        ...base,
        statistic: dc.auc,
        p_value: dc.pValue,
        drifted: dc.drifted,
        details: { fold_aucs: dc.foldAucs, alpha: o.classifierAlpha, n_reference: dc.nRef, n_current: dc.nCur, dim },
      },
    ],
    features: [],
  };
}

function predictionDriftChecks(ref: DriftSide, cur: DriftSide, o: DriftOptions): DriftComputation {
  const prBase = { detector: 'prediction_positive_rate' as const, method: 'two_proportion_z_test', threshold: o.predictionAlpha, rule: 'p_value < threshold' };
  const distBase = { detector: 'prediction_distribution' as const, method: 'ks', threshold: o.predictionAlpha, rule: 'p_value < threshold' };
  if (ref.probabilities.length < o.minRows || cur.probabilities.length < o.minRows) {
    const reason = `too few probabilities (reference ${ref.probabilities.length}, current ${cur.probabilities.length}; need ${o.minRows})`;
    return {
      checks: [
        { ...prBase, statistic: null, p_value: null, drifted: false, skipped: reason },
        { ...distBase, statistic: null, p_value: null, drifted: false, skipped: reason },
      ],
      features: [],
    };
  }
  const r = predictionDrift(ref.probabilities, cur.probabilities, { threshold: cur.threshold, alpha: o.predictionAlpha });
  return {
    checks: [
      {
        ...prBase,
        statistic: r.positiveRateZ,
        p_value: r.positiveRatePValue,
        drifted: r.positiveRatePValue < o.predictionAlpha,
        details: { reference_positive_rate: r.refPositiveRate, current_positive_rate: r.curPositiveRate, decision_threshold: r.threshold },
      },
      { ...distBase, statistic: r.ks.statistic, p_value: r.ks.pValue, drifted: r.ks.pValue < o.predictionAlpha, details: { ks_method: r.ks.method } },
    ],
    features: [],
  };
}

/** Runs one group of detectors. */
export function computeDriftStep(step: DriftStep, ref: DriftSide, cur: DriftSide, options: DriftOptions, seed: string): DriftComputation {
  switch (step) {
    case 'data':
      return dataDrift(ref, cur, options);
    case 'embedding_mmd':
    case 'embedding_classifier':
      return embeddingCheck(step, ref, cur, options, seed);
    case 'prediction':
      return predictionDriftChecks(ref, cur, options);
  }
}

/** Every detector, in a fixed order. */
export function computeDrift(ref: DriftSide, cur: DriftSide, options: DriftOptions, seed: string): DriftComputation {
  const out: DriftComputation = { checks: [], features: [] };
  for (const step of DRIFT_STEPS) {
    const r = computeDriftStep(step, ref, cur, options, seed);
    out.checks.push(...r.checks);
    out.features.push(...r.features);
  }
  return out;
}
