import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../core/errors.js';
import type { ImageShift } from '../core/imaging/index.js';
import { evaluateBinary, Rng, type BinaryEvaluation } from '../core/ml/index.js';
import { planImport } from '../data-pipeline/service/import-files.js';
import type { ClassLabel, Split } from '../data-pipeline/store/types.js';
import type { PredictionStats } from '../deployment/store/prediction-store.js';

/**
 * Evaluation of a model on labelled images through the serving path itself. The images are scored
 * by an `EvaluationScorer`: the deployment service's POST /models/score over the platform's API
 * (registered versions: the version's own session, preprocessing, threshold and site temperature;
 * nothing is recorded as a prediction, so an evaluation never shows up in monitoring), or the
 * serving code on a local ONNX file that is in no registry. Here: which images, a seeded subset,
 * shifts, and the metrics.
 */

/** `name`, `name@alias`, `name@3`, `name@v3` or `name@latest` (default alias: production). */
export { parseModelRef, type ModelRef } from './model-ref.js';

export type ModelTarget = { kind: 'registry'; name: string; ref: string } | { kind: 'onnx'; path: string };

/** Where the labelled images come from. */
export type ImageSourceSpec = { kind: 'folder'; dir: string } | { kind: 'dataset'; version: string; split: Split };

export interface EvaluationOptions {
  model: ModelTarget;
  source: ImageSourceSpec;
  /** Evaluate a seeded random subset of at most this many images. */
  limit?: number;
  /** Seed of `limit`'s subset and of the bootstrap (default 0). */
  seed?: number;
  /** Bootstrap resamples of the AUC interval (default 1000). */
  bootstrap?: number;
  /** Also collect the drift reference (image statistics + embeddings) of every image. */
  reference?: boolean;
  /** Alter every image file before the serving path sees it (robustness evaluation). */
  shift?: ImageShift;
  onStart?: (total: number) => void;
  onProgress?: (done: number, total: number, failed: number) => void;
}

export interface EvaluatedImage {
  file: string;
  label: ClassLabel;
  probability: number;
}

export interface EvaluationFailure {
  file: string;
  code: string;
  message: string;
}

export interface EvaluatedModel {
  name: string;
  version: string;
  alias: string | null;
  source: { kind: 'registry' | 'file'; uri: string };
  sha256: string;
  threshold: number;
  /** Where the threshold came from: the registry record, the file's metadata, or the 0.5 default. */
  threshold_source: 'registry' | 'onnx-metadata' | 'default';
  input_size: number;
  preprocessing: Record<string, unknown>;
  heatmap_method: string;
  /** What the registry recorded at registration (validation split), for comparison. */
  recorded: { val_auc: number | null; auc_ci: [number, number] | null; sensitivity: number | null; specificity: number | null; dataset_version: string | null } | null;
}

/** The JSON report: the `evaluateBinary` shape plus what was evaluated, how, and what failed. */
export type EvaluationReport = BinaryEvaluation & {
  report: 'xray-evaluation/1';
  created_at: string;
  duration_ms: number;
  model: EvaluatedModel;
  data: { kind: 'folder'; folder: string } | { kind: 'dataset'; dataset_version: string; split: Split };
  /** The shift applied to every image file, or null for the images as they are. */
  shift: { name: string; description: string } | null;
  counts: {
    /** Images found (after --limit). */
    images: number;
    evaluated: number;
    /** Images that could not be read, decoded or predicted. */
    failed: number;
    /** Other files in the class folders (not an image extension), listed in `failures` too. */
    skipped: number;
    per_class: Record<ClassLabel, { found: number; evaluated: number }>;
    /** Images found before --limit was applied. */
    available: number;
  };
  bootstrap: { resamples: number; seed: number; level: number };
  failures: EvaluationFailure[];
  predictions: EvaluatedImage[];
};

/** The drift reference in the format monitoring reads from a registry's `reference.json`. */
export interface ReferenceDocument {
  format: 'xray-reference/1';
  model: { name: string; version: string; sha256: string };
  created_at: string;
  threshold: number;
  stats: PredictionStats[];
  embeddings: number[][];
  probabilities: number[];
  labels: ClassLabel[];
}

export interface EvaluationResult {
  report: EvaluationReport;
  reference: ReferenceDocument | null;
}

/** One image as a scorer takes it: bytes, or the sha256 of an image the data pipeline stores. */
export type ScorerImage = { bytes: Uint8Array; filename: string } | { sha256: string };

/** One image's score, with its drift-reference row when asked for. */
export type ScorerResult =
  | { ok: true; probability: number; reference?: { stats: PredictionStats; embedding: number[] | null } }
  | { ok: false; code: string; message: string };

/** What scores the images of one evaluation. */
export interface EvaluationScorer {
  /** The model, as the report describes it (known once an image has been scored). */
  readonly model: EvaluatedModel;
  /** Images per `score` call. */
  readonly batchSize: number;
  /** Whether it takes stored images by sha256 (else their bytes are read and sent). */
  readonly takesStoredImages: boolean;
  /** Scores images in order; each succeeds or fails on its own. */
  score(images: ScorerImage[], options: { reference: boolean }): Promise<ScorerResult[]>;
}

/** Where a dataset version's items are read (the data pipeline's API). */
export interface DatasetReader {
  /** The items of one split of a version. @throws AppError NOT_FOUND for an unknown version. */
  items(version: string, split: Split): Promise<{ hash: string; label: ClassLabel }[]>;
  /** The stored bytes of an image. */
  bytes(hash: string): Promise<Uint8Array>;
}

interface ImageItem {
  file: string;
  label: ClassLabel;
  /** Stored in the data pipeline: scored by hash unless a shift needs the bytes. */
  sha256?: string;
  read(): Promise<Uint8Array>;
}

/** A seeded subset of at most `limit` items, kept in their original order. */
function subset<T>(items: T[], limit: number | undefined, seed: number): T[] {
  if (limit === undefined || items.length <= limit) return items;
  const picked = Array.from(new Rng(`evaluate-limit:${seed}`).sampleIndices(items.length, limit)).sort((a, b) => a - b);
  return picked.map((i) => items[i]!);
}

async function folderItems(dir: string): Promise<{ items: ImageItem[]; rejected: EvaluationFailure[] }> {
  const root = path.resolve(dir);
  const plan = await planImport(root, { root }).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AppError('NOT_FOUND', `folder '${dir}' does not exist`);
    if (code === 'ENOTDIR') throw new AppError('INVALID_INPUT', `'${dir}' is not a folder`);
    throw err;
  });
  const items = plan.files
    .filter((f): f is typeof f & { label: ClassLabel } => f.label === 'NORMAL' || f.label === 'PNEUMONIA')
    .map((f) => ({ file: f.relative, label: f.label, read: () => readFile(f.path) }));
  return { items, rejected: plan.rejected.map((r) => ({ file: r.file, code: r.code, message: r.message })) };
}

async function datasetItems(reader: DatasetReader, version: string, split: Split): Promise<ImageItem[]> {
  return (await reader.items(version, split)).map((i) => ({ file: `${split}/${i.label}/${i.hash}`, label: i.label, sha256: i.hash, read: () => reader.bytes(i.hash) }));
}

/** What the scorer is handed for one item: the stored hash, or the (shifted) bytes. */
async function scorerImage(item: ImageItem, shift: ImageShift | undefined, byHash: boolean): Promise<ScorerImage> {
  if (item.sha256 && !shift && byHash) return { sha256: item.sha256 };
  const bytes = await item.read().catch((err: unknown) => {
    throw err instanceof AppError ? err : new AppError('UNPROCESSABLE', `cannot read the file: ${(err as Error).message}`);
  });
  if (bytes.length === 0) throw new AppError('INVALID_INPUT', 'the file is empty (0 bytes)');
  return { bytes: shift ? await shift.apply(bytes) : bytes, filename: path.basename(item.file) };
}

function errorOf(err: unknown): { code: string; message: string } {
  if (err instanceof AppError) return { code: err.code, message: err.message };
  return { code: 'UNPROCESSABLE', message: err instanceof Error ? err.message : String(err) };
}

/**
 * Evaluates a model on labelled images through the serving path and computes the report at the
 * model's own stored threshold. Unreadable or undecodable images are listed in `failures`.
 * @throws AppError NOT_FOUND (folder, dataset version), INVALID_INPUT when no labelled image is
 *   found, UNPROCESSABLE when no image could be evaluated, and the scorer's errors.
 */
export async function evaluateModel(scorer: EvaluationScorer, options: EvaluationOptions, datasets?: DatasetReader): Promise<EvaluationResult> {
  const started = performance.now();
  const seed = options.seed ?? 0;
  const bootstrap = options.bootstrap ?? 1000;
  let all: ImageItem[];
  const failures: EvaluationFailure[] = [];
  let skipped = 0;
  if (options.source.kind === 'folder') {
    const found = await folderItems(options.source.dir);
    all = found.items;
    failures.push(...found.rejected);
    skipped = found.rejected.length;
  } else {
    if (!datasets) throw new AppError('INVALID_INPUT', 'a dataset version is evaluated through the platform API, which is not available here');
    all = await datasetItems(datasets, options.source.version, options.source.split);
  }
  if (all.length === 0) {
    const where = options.source.kind === 'folder' ? `folder '${options.source.dir}' (expected <folder>/NORMAL/* and <folder>/PNEUMONIA/*)` : `split '${options.source.split}' of dataset version ${options.source.version}`;
    throw new AppError('INVALID_INPUT', `no labelled images found in ${where}`);
  }
  const items = subset(all, options.limit, seed);
  const reference = Boolean(options.reference);

  const results: (EvaluatedImage | null)[] = new Array(items.length).fill(null);
  const refRows: (NonNullable<Extract<ScorerResult, { ok: true }>['reference']> | null)[] = new Array(items.length).fill(null);
  let done = 0;
  let failed = 0;
  options.onStart?.(items.length);
  for (let from = 0; from < items.length; from += scorer.batchSize) {
    const batch = items.slice(from, from + scorer.batchSize);
    // Files that cannot be read (or shifted) fail here; the rest go to the scorer in one call.
    const prepared = await Promise.all(batch.map((item) => scorerImage(item, options.shift, scorer.takesStoredImages).then((image) => ({ image }), (err: unknown) => ({ error: errorOf(err) }))));
    const sendable = prepared.flatMap((p, i) => ('image' in p ? [{ i, image: p.image }] : []));
    const scored = sendable.length ? await scorer.score(sendable.map((x) => x.image), { reference }) : [];
    const byIndex = new Map(sendable.map((x, k) => [x.i, scored[k]!]));
    batch.forEach((item, i) => {
      const p = prepared[i]!;
      const r = byIndex.get(i);
      if ('error' in p || !r || !r.ok) {
        failed++;
        failures.push({ file: item.file, ...('error' in p ? p.error : r && !r.ok ? { code: r.code, message: r.message } : { code: 'UNPROCESSABLE', message: 'not scored' }) });
      } else {
        results[from + i] = { file: item.file, label: item.label, probability: r.probability };
        refRows[from + i] = r.reference ?? null;
      }
      options.onProgress?.(++done, items.length, failed);
    });
  }

  const evaluated = results.filter((r): r is EvaluatedImage => r !== null);
  if (evaluated.length === 0) {
    const first = failures[0];
    throw new AppError('UNPROCESSABLE', `none of the ${items.length} images could be evaluated${first ? ` (first failure: ${first.file}: ${first.message})` : ''}`);
  }
  const model = scorer.model;
  const metrics = evaluateBinary(
    evaluated.map((r) => (r.label === 'PNEUMONIA' ? 1 : 0)),
    evaluated.map((r) => r.probability),
    { threshold: model.threshold, bootstrap, seed },
  );
  const perClass = (label: ClassLabel) => ({ found: items.filter((x) => x.label === label).length, evaluated: evaluated.filter((x) => x.label === label).length });
  const report: EvaluationReport = {
    report: 'xray-evaluation/1',
    created_at: new Date().toISOString(),
    duration_ms: Math.round(performance.now() - started),
    model,
    data: options.source.kind === 'folder' ? { kind: 'folder', folder: path.resolve(options.source.dir) } : { kind: 'dataset', dataset_version: options.source.version, split: options.source.split },
    shift: options.shift ? { name: options.shift.name, description: options.shift.description } : null,
    counts: {
      images: items.length,
      evaluated: evaluated.length,
      failed,
      skipped,
      per_class: { NORMAL: perClass('NORMAL'), PNEUMONIA: perClass('PNEUMONIA') },
      available: all.length,
    },
    bootstrap: { resamples: bootstrap, seed, level: 0.95 },
    ...metrics,
    failures: failures.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)),
    predictions: evaluated,
  };
  let referenceDoc: ReferenceDocument | null = null;
  if (reference) {
    const rows = results.flatMap((r, i) => (r && refRows[i] ? [{ r, row: refRows[i]! }] : []));
    referenceDoc = {
      format: 'xray-reference/1',
      model: { name: model.name, version: model.version, sha256: model.sha256 },
      created_at: report.created_at,
      threshold: model.threshold,
      stats: rows.map((x) => x.row.stats),
      embeddings: rows.flatMap((x) => (x.row.embedding ? [x.row.embedding] : [])),
      probabilities: rows.map((x) => x.r.probability),
      labels: rows.map((x) => x.r.label),
    };
  }
  return { report, reference: referenceDoc };
}

/** One row of the robustness table: the metrics of one shifted copy of the set, at the stored threshold. */
export interface RobustnessRow {
  shift: string;
  description: string;
  n: number;
  failed: number;
  auc: number | null;
  auc_ci: [number, number] | null;
  sensitivity: number | null;
  specificity: number | null;
  accuracy: number | null;
  threshold: number;
}

export function robustnessRow(report: EvaluationReport): RobustnessRow {
  return {
    shift: report.shift?.name ?? 'none',
    description: report.shift?.description ?? 'the images as they are',
    n: report.n,
    failed: report.counts.failed,
    auc: report.auc,
    auc_ci: report.auc_ci,
    sensitivity: report.sensitivity,
    specificity: report.specificity,
    accuracy: report.accuracy,
    threshold: report.threshold,
  };
}
