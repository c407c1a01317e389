import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { AppError, isAppError } from '../../core/errors.js';
import type { ImagePool } from '../../core/imaging/image-pool.js';
import { classActivationMap } from '../../core/ml/cam.js';
import { EmbeddingProjector } from '../../core/ml/embedding.js';
import { MAX_SCORE_IMAGES, type ScoreCam, type ScoreImage, type ScoreOptions, type ScoreReference, type ScoreReport, type ScoreResult } from '../client/scoring.js';
import type { ImageBytesSource } from '../dataplane.js';
import type { ModelSource } from './model-source.js';
import { OnnxModel } from './onnx-model.js';

export interface ScoringDeps {
  source: ModelSource | null;
  pool: ImagePool;
  /** Stored images by sha256 (the data pipeline), for hash inputs. */
  images: ImageBytesSource | null;
  logger?: Logger;
  /** Intra-op threads of the scoring session (default: the machine's cores). */
  threads?: number;
}

/** The CAM /predict draws (before it is scaled by the probability), or null for a model without one. */
function camOf(model: OnnxModel, features: Float32Array | null): ScoreCam | null {
  const shape = model.featureShape;
  if (model.heatmapMethod !== 'cam' || !features || !shape) return null;
  const [c, h, w] = shape;
  return { h, w, grid: Array.from(classActivationMap(features, c, h, w, model.classifierWeight!)) };
}

/** The row /predict records for monitoring: the image's statistics and the data plane's embedding. */
function referenceOf(model: OnnxModel, pre: Awaited<ReturnType<ImagePool['run']>>, features: Float32Array | null, embeddings: EmbeddingProjector | null): ScoreReference {
  const stats = { ...pre.stats, sourceFormat: pre.source.format, sourceWidth: pre.source.width, sourceHeight: pre.source.height };
  return { stats, embedding: embeddings && features && model.featureShape ? embeddings.embed(features, model.featureShape) : null };
}

function errorOf(err: unknown): { code: string; message: string } {
  if (isAppError(err)) return { code: err.code, message: err.message };
  return { code: 'UNPROCESSABLE', message: err instanceof Error ? err.message : String(err) };
}

/**
 * Scores images with a registered version through the serving path: the version is resolved in
 * the registry and loaded into an ONNX Runtime session of its own (the OnnxModel /predict uses,
 * with its dynamic batcher, threshold and site temperature), every image is decoded and
 * preprocessed in the worker pool with the version's recorded preprocessing, then the session is
 * released. Nothing is logged as a prediction or cached.
 * @throws AppError SERVICE_UNAVAILABLE without a registry; the source's NOT_FOUND; UNPROCESSABLE
 *   when the version cannot load; INVALID_INPUT for an empty or too long list.
 */
export async function scoreVersion(deps: ScoringDeps, name: string, version: string, inputs: ScoreImage[], options: ScoreOptions = {}): Promise<ScoreReport> {
  if (!deps.source) throw new AppError('SERVICE_UNAVAILABLE', 'no model registry is available to this deployment service, so it cannot score a registered version');
  if (inputs.length === 0) throw new AppError('INVALID_INPUT', 'no images to score');
  if (inputs.length > MAX_SCORE_IMAGES) throw new AppError('INVALID_INPUT', `at most ${MAX_SCORE_IMAGES} images per call, got ${inputs.length}`);
  if (inputs.some((i) => 'sha256' in i) && !deps.images) throw new AppError('SERVICE_UNAVAILABLE', 'stored images are not available to this deployment service; upload the files instead');
  const started = performance.now();
  const resolved = await deps.source.resolve(name, version);
  const bytes = await resolved.fetch();
  const model = await OnnxModel.create(
    bytes,
    { name: resolved.name, version: resolved.version, alias: null, source: { kind: 'registry', uri: resolved.uri }, preprocessing: resolved.preprocessing, threshold: resolved.threshold, temperature: resolved.temperature ?? null },
    { batching: { maxBatchSize: 16, maxQueueDelayMs: 2, maxQueueSize: 256 }, threads: deps.threads ?? availableParallelism(), logger: deps.logger },
  );
  const results: ScoreResult[] = new Array(inputs.length);
  const embeddings = options.reference && model.featureShape ? new EmbeddingProjector() : null;
  try {
    let next = 0;
    const concurrency = Math.min(inputs.length, 32);
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < inputs.length) {
          const i = next++;
          const input = inputs[i]!;
          try {
            const image = 'sha256' in input ? await deps.images!.read(input.sha256) : input.bytes;
            if (!image || image.length === 0) throw new AppError('INVALID_INPUT', 'the image is empty (0 bytes)');
            const pre = await deps.pool.run(image, model.preprocessing);
            const { output } = await model.batcher.submit(pre.input);
            if (!Number.isFinite(output.rawProbability)) throw new AppError('UNPROCESSABLE', 'the model returned a non-finite probability');
            results[i] = { ok: true, raw_probability: output.rawProbability, probability: output.probability, ...(options.cam ? { cam: camOf(model, output.features) } : {}), ...(options.reference ? { reference: referenceOf(model, pre, output.features, embeddings) } : {}) };
          } catch (err) {
            results[i] = { ok: false, error: errorOf(err) };
          }
        }
      }),
    );
  } finally {
    await model.retire();
  }
  return {
    name: model.name,
    version: model.version,
    onnx_sha256: model.sha256,
    threshold: model.threshold,
    temperature: model.temperature,
    input_size: model.inputSize,
    preprocessing_hash: model.preprocessingHash,
    preprocessing: { ...model.describe().preprocessing },
    uri: model.source.uri,
    heatmap_method: model.heatmapMethod,
    results,
    duration_ms: Math.round(performance.now() - started),
  };
}
