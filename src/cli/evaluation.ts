import { availableParallelism } from 'node:os';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError, isAppError } from '../core/errors.js';
import type { Platform } from '../core/platform.js';
import type { ImageShift } from '../core/imaging/index.js';
import { EmbeddingProjector } from '../core/ml/embedding.js';
import { evaluateBinary, Rng, type BinaryEvaluation } from '../core/ml/index.js';
import { sha256Hex } from '../core/objects/index.js';
import { dataContext, getManifest } from '../data-pipeline/service/index.js';
import { planImport } from '../data-pipeline/service/import-files.js';
import { LocalDataPipelineClient } from '../data-pipeline/service/local-client.js';
import type { ClassLabel, Split } from '../data-pipeline/store/types.js';
import { ModelRepository } from '../deployment/model-repository.js';
import type { OnnxModel } from '../deployment/service/onnx-model.js';
import { ImagePool } from '../core/imaging/image-pool.js';
import { RegistryModelSource } from '../deployment/service/registry-source.js';
import { StoredImages } from '../deployment/service/stored-images.js';
import type { PredictionStats } from '../deployment/store/prediction-store.js';
import { LocalModelRegistryClient } from '../model-registry/service/local-client.js';
import { ModelRegistryService } from '../model-registry/service/registry-service.js';

/**
 * Evaluation of a model on labelled images through the serving path itself: the deployment
 * service's ModelRepository (registry resolution, the ONNX Runtime session, its dynamic batcher)
 * and ImagePool (the same decode + preprocess the data plane runs). Nothing is logged as a
 * prediction, so an evaluation never shows up in monitoring.
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
  /** Images in flight at once (default: enough to fill the batcher). */
  concurrency?: number;
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

interface ImageItem {
  file: string;
  label: ClassLabel;
  read(): Promise<Uint8Array>;
}

const isVersionRef = (ref: string) => /^v?\d+$/i.test(ref) || ref.toLowerCase() === 'latest';

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

async function datasetItems(platform: Platform, version: string, split: Split): Promise<ImageItem[]> {
  const manifest = await getManifest(dataContext(platform), version);
  const images = new StoredImages(new LocalDataPipelineClient(dataContext(platform)));
  return manifest.items
    .filter((i) => i.split === split)
    .map((i) => ({ file: `${split}/${i.label}/${i.hash}`, label: i.label, read: () => images.read(i.hash) }));
}

async function loadModel(platform: Platform, repository: ModelRepository, target: ModelTarget): Promise<{ model: OnnxModel; recorded: EvaluatedModel['recorded']; thresholdSource: EvaluatedModel['threshold_source'] }> {
  if (target.kind === 'registry') {
    const info = await repository.load(isVersionRef(target.ref) ? { name: target.name, version: target.ref } : { name: target.name, alias: target.ref });
    const model = repository.lookup(info.name, info.version);
    // The record of the version that was loaded (not a fresh alias lookup that could have moved).
    const record = await new ModelRegistryService(platform).resolve(info.name, info.version);
    const m = record.metrics ?? {};
    const ci = Array.isArray(m.auc_ci) && m.auc_ci.length === 2 ? (m.auc_ci as [number, number]) : null;
    const n = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
    return {
      model,
      recorded: { val_auc: record.val_auc, auc_ci: ci, sensitivity: n(m.sensitivity), specificity: n(m.specificity), dataset_version: record.dataset_version },
      thresholdSource: record.threshold === null || record.threshold_method === 'default' ? 'default' : 'registry',
    };
  }
  const file = path.resolve(target.path);
  const bytes = await readFile(file).catch(() => {
    throw new AppError('NOT_FOUND', `ONNX file '${target.path}' does not exist or cannot be read`);
  });
  const name = path.basename(file, path.extname(file)).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'model';
  const model = await repository.loadBytes(bytes, { name, version: `local-${sha256Hex(bytes).slice(0, 12)}`, alias: null, source: { kind: 'file', uri: file } });
  return { model, recorded: null, thresholdSource: model.metadata.threshold ? 'onnx-metadata' : 'default' };
}

function errorOf(err: unknown): { code: string; message: string } {
  if (isAppError(err)) return { code: err.code, message: err.message };
  return { code: 'UNPROCESSABLE', message: err instanceof Error ? err.message : String(err) };
}

/**
 * Evaluates a model on labelled images through the serving path and computes the report at the
 * model's own stored threshold. Unreadable or undecodable images are listed in `failures`.
 * @throws AppError NOT_FOUND (model, folder, dataset version), UNPROCESSABLE when no image could
 *   be evaluated, and the model loading errors of the deployment service.
 */
export async function evaluateModel(platform: Platform, options: EvaluationOptions): Promise<EvaluationResult> {
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
    all = await datasetItems(platform, options.source.version, options.source.split);
  }
  if (all.length === 0) {
    const where = options.source.kind === 'folder' ? `folder '${options.source.dir}' (expected <folder>/NORMAL/* and <folder>/PNEUMONIA/*)` : `split '${options.source.split}' of dataset version ${options.source.version}`;
    throw new AppError('INVALID_INPUT', `no labelled images found in ${where}`);
  }
  const items = subset(all, options.limit, seed);

  const cores = availableParallelism();
  const repository = new ModelRepository({
    logger: platform.logger,
    source: new RegistryModelSource(new LocalModelRegistryClient(new ModelRegistryService(platform))),
    threads: cores,
    allowedRoots: [],
    defaultName: 'model',
  });
  const pool = new ImagePool({ threads: cores });
  try {
    const { model, recorded, thresholdSource } = await loadModel(platform, repository, options.model);
    const release = model.acquire();
    const results: (EvaluatedImage | null)[] = new Array(items.length).fill(null);
    const refRows: ({ stats: PredictionStats; embedding: number[] | null } | null)[] = new Array(items.length).fill(null);
    const embeddings = options.reference && model.featureShape ? new EmbeddingProjector() : null;
    const { maxBatchSize, maxQueueSize } = model.batcher.options;
    const concurrency = Math.max(1, Math.min(options.concurrency ?? Math.max(cores * 2, maxBatchSize * 2), Math.floor(maxQueueSize / 2) || 1, items.length));
    let next = 0;
    let done = 0;
    let failed = 0;
    options.onStart?.(items.length);
    try {
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < items.length) {
            const i = next++;
            const item = items[i]!;
            try {
              const bytes = await item.read().catch((err: unknown) => {
                throw isAppError(err) ? err : new AppError('UNPROCESSABLE', `cannot read the file: ${(err as Error).message}`);
              });
              if (bytes.length === 0) throw new AppError('INVALID_INPUT', 'the file is empty (0 bytes)');
              const pre = await pool.run(options.shift ? await options.shift.apply(bytes) : bytes, model.preprocessing);
              const { output } = await model.batcher.submit(pre.input);
              if (!Number.isFinite(output.probability)) throw new AppError('UNPROCESSABLE', 'the model returned a non-finite probability');
              results[i] = { file: item.file, label: item.label, probability: output.probability };
              if (options.reference) {
                const stats: PredictionStats = { ...pre.stats, sourceFormat: pre.source.format, sourceWidth: pre.source.width, sourceHeight: pre.source.height };
                let embedding: number[] | null = null;
                // The data plane's embedding, exactly (monitoring compares the two).
                if (embeddings && output.features && model.featureShape) embedding = embeddings.embed(output.features, model.featureShape);
                refRows[i] = { stats, embedding };
              }
            } catch (err) {
              failed++;
              failures.push({ file: item.file, ...errorOf(err) });
            }
            options.onProgress?.(++done, items.length, failed);
          }
        }),
      );
    } finally {
      release();
    }

    const evaluated = results.filter((r): r is EvaluatedImage => r !== null);
    if (evaluated.length === 0) {
      const first = failures[0];
      throw new AppError('UNPROCESSABLE', `none of the ${items.length} images could be evaluated${first ? ` (first failure: ${first.file}: ${first.message})` : ''}`);
    }
    const metrics = evaluateBinary(
      evaluated.map((r) => (r.label === 'PNEUMONIA' ? 1 : 0)),
      evaluated.map((r) => r.probability),
      { threshold: model.threshold, bootstrap, seed },
    );
    const perClass = (label: ClassLabel) => ({ found: items.filter((x) => x.label === label).length, evaluated: evaluated.filter((x) => x.label === label).length });
    const d = model.describe();
    const report: EvaluationReport = {
      report: 'xray-evaluation/1',
      created_at: new Date().toISOString(),
      duration_ms: Math.round(performance.now() - started),
      model: {
        name: model.name,
        version: model.version,
        alias: model.alias,
        source: model.source,
        sha256: model.sha256,
        threshold: model.threshold,
        threshold_source: thresholdSource,
        input_size: model.inputSize,
        preprocessing: { ...d.preprocessing },
        heatmap_method: model.heatmapMethod,
        recorded,
      },
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
    let reference: ReferenceDocument | null = null;
    if (options.reference) {
      const rows = results.flatMap((r, i) => (r && refRows[i] ? [{ r, row: refRows[i]! }] : []));
      reference = {
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
    platform.audit.record({
      actor: 'cli',
      action: 'model.evaluate',
      resource: `model:${model.name}/${model.version}`,
      outcome: 'success',
      requestId: null,
      service: 'cli',
      details: { data: report.data, shift: report.shift?.name ?? null, n: metrics.n, auc: metrics.auc, sensitivity: metrics.sensitivity, specificity: metrics.specificity, threshold: metrics.threshold, failed: failures.length },
    });
    return { report, reference };
  } finally {
    await repository.close();
    await pool.close();
  }
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
