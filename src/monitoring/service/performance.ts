import { rocAuc } from '../../core/ml/metrics.js';
import type { Feedback } from '../store/types.js';

/** Rolling classification metrics over labelled predictions. */
export interface RollingPerformance {
  n: number;
  positives: number;
  /** null when only one class is present. */
  auc: number | null;
  sensitivity: number | null;
  specificity: number | null;
  accuracy: number;
  first: number | null;
  last: number | null;
}

/**
 * AUC over the probabilities and sensitivity/specificity at each prediction's own decision
 * threshold (the one the clinician saw).
 */
export function rollingPerformance(items: readonly Feedback[]): RollingPerformance {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (const f of items) {
    const predicted = f.probability >= f.threshold;
    if (f.label === 1) {
      if (predicted) tp++;
      else fn++;
    } else if (predicted) fp++;
    else tn++;
  }
  const positives = tp + fn;
  const negatives = tn + fp;
  let auc: number | null = null;
  if (positives > 0 && negatives > 0) {
    const v = rocAuc(
      items.map((f) => f.label),
      items.map((f) => f.probability),
    );
    auc = Number.isFinite(v) ? v : null;
  }
  return {
    n: items.length,
    positives,
    auc,
    sensitivity: positives > 0 ? tp / positives : null,
    specificity: negatives > 0 ? tn / negatives : null,
    accuracy: items.length > 0 ? (tp + tn) / items.length : 0,
    first: items.length ? items[0]!.predictedAt : null,
    last: items.length ? items[items.length - 1]!.predictedAt : null,
  };
}
