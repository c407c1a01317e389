import { invalidInput } from '../../core/errors.js';
import { Rng } from '../../core/ml/random.js';
import { flattenStats, type PredictionWindow } from '../store/prediction-source.js';
import type { ReferenceData, ReferenceSummary, StatsRow } from '../store/types.js';
import { rollingPerformance } from './performance.js';

/** Most rows and embeddings kept in one reference. */
export const REFERENCE_MAX_ROWS = 20000;
export const REFERENCE_MAX_EMBEDDINGS = 3000;

function median(values: number[]): number {
  if (values.length === 0) return 0.5;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

function toLabel(v: unknown, i: number): number {
  if (v === 1 || v === true || v === '1') return 1;
  if (v === 0 || v === false || v === '0') return 0;
  if (typeof v === 'string') {
    const u = v.toUpperCase();
    if (u === 'PNEUMONIA' || u === 'POSITIVE') return 1;
    if (u === 'NORMAL' || u === 'NEGATIVE') return 0;
  }
  throw invalidInput(`labels[${i}] must be 0/1 or NORMAL/PNEUMONIA`);
}

function subsampleIndex(n: number, max: number, seed: string): number[] | null {
  if (n <= max) return null;
  return Array.from(new Rng(seed).sampleIndices(n, max)).sort((a, b) => a - b);
}

/**
 * Normalises a supplied reference — the `reference.json` the registry ships with a model
 * (`{ stats | rows, embeddings, probabilities, labels?, threshold? }`) or rows posted to
 * `POST /drift/reference` — into {@link ReferenceData}. Stats objects are flattened to numeric
 * features; oversized inputs are subsampled (seeded, reproducible).
 *
 * @throws AppError INVALID_INPUT on a malformed document.
 */
export function parseReferenceDocument(doc: unknown, seed = 'reference'): ReferenceData {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw invalidInput('a reference must be a JSON object');
  const d = doc as Record<string, unknown>;
  const rawStats = d.stats ?? d.rows ?? [];
  const rawEmb = d.embeddings ?? [];
  const rawProbs = d.probabilities ?? [];
  if (!Array.isArray(rawStats) || !Array.isArray(rawEmb) || !Array.isArray(rawProbs)) {
    throw invalidInput('reference stats/rows, embeddings and probabilities must be arrays');
  }
  const stats: StatsRow[] = rawStats.map((row, i) => {
    if (!row || typeof row !== 'object' || Array.isArray(row)) throw invalidInput(`stats[${i}] must be an object of numbers`);
    return flattenStats(row);
  });
  let dim = -1;
  const embeddings = rawEmb.map((e, i) => {
    if (!Array.isArray(e) || e.length === 0 || !e.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw invalidInput(`embeddings[${i}] must be a non-empty array of finite numbers`);
    }
    if (dim === -1) dim = e.length;
    else if (e.length !== dim) throw invalidInput(`embeddings[${i}] has ${e.length} values, expected ${dim}`);
    return e as number[];
  });
  const probabilities = rawProbs.map((p, i) => {
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw invalidInput(`probabilities[${i}] must be a number in [0, 1]`);
    return p;
  });
  let labels: number[] | undefined;
  if (d.labels !== undefined) {
    if (!Array.isArray(d.labels) || d.labels.length !== probabilities.length) throw invalidInput('labels must be an array as long as probabilities');
    labels = d.labels.map(toLabel);
  }
  const threshold = d.threshold === undefined ? undefined : Number(d.threshold);
  if (threshold !== undefined && !(threshold >= 0 && threshold <= 1)) throw invalidInput('threshold must be a number in [0, 1]');
  if (stats.length === 0 && embeddings.length === 0 && probabilities.length === 0) {
    throw invalidInput('a reference needs stats rows, embeddings or probabilities');
  }

  const statsPick = subsampleIndex(stats.length, REFERENCE_MAX_ROWS, `${seed}:stats`);
  const embPick = subsampleIndex(embeddings.length, REFERENCE_MAX_EMBEDDINGS, `${seed}:emb`);
  const probPick = subsampleIndex(probabilities.length, REFERENCE_MAX_ROWS, `${seed}:prob`);
  const data: ReferenceData = {
    stats: statsPick ? statsPick.map((i) => stats[i]!) : stats,
    embeddings: embPick ? embPick.map((i) => embeddings[i]!) : embeddings,
    probabilities: probPick ? probPick.map((i) => probabilities[i]!) : probabilities,
  };
  if (labels) data.labels = probPick ? probPick.map((i) => labels[i]!) : labels;
  if (threshold !== undefined) data.threshold = threshold;
  return data;
}

/** A reference from a window of prediction records. */
export function referenceFromWindow(w: PredictionWindow): ReferenceData {
  return {
    stats: w.stats,
    embeddings: w.embeddings.slice(0, REFERENCE_MAX_EMBEDDINGS),
    probabilities: w.probabilities,
    threshold: median(w.thresholds),
  };
}

/** Positive rate, mean probability and (with labels) AUC/sensitivity/specificity of a reference. */
export function summariseReference(data: ReferenceData): ReferenceSummary {
  const threshold = data.threshold ?? 0.5;
  const n = data.probabilities.length;
  const summary: ReferenceSummary = { threshold };
  if (n > 0) {
    summary.positiveRate = data.probabilities.filter((p) => p >= threshold).length / n;
    summary.meanProbability = data.probabilities.reduce((a, b) => a + b, 0) / n;
  }
  if (data.labels && data.labels.length === n && n > 0) {
    const perf = rollingPerformance(
      data.probabilities.map((p, i) => ({
        predictionId: String(i),
        model: '',
        version: '',
        label: data.labels![i] === 1 ? 1 : 0,
        probability: p,
        threshold,
        predictedAt: i,
        actor: '',
        createdAt: 0,
      })),
    );
    if (perf.auc !== null) summary.auc = perf.auc;
    if (perf.sensitivity !== null) summary.sensitivity = perf.sensitivity;
    if (perf.specificity !== null) summary.specificity = perf.specificity;
  }
  return summary;
}

/** Feature names present in a reference's stats rows. */
export function referenceFeatures(data: ReferenceData): string[] {
  const keys = new Set<string>();
  for (const row of data.stats.slice(0, 500)) for (const k of Object.keys(row)) keys.add(k);
  return [...keys].sort();
}
