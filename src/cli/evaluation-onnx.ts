import { availableParallelism } from 'node:os';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { AppError, isAppError } from '../core/errors.js';
import { ImagePool } from '../core/imaging/image-pool.js';
import { EmbeddingProjector } from '../core/ml/embedding.js';
import { sha256Hex } from '../core/objects/index.js';
import { ModelRepository } from '../deployment/model-repository.js';
import type { OnnxModel } from '../deployment/service/onnx-model.js';
import type { PredictionStats } from '../deployment/store/prediction-store.js';
import type { EvaluatedModel, EvaluationScorer, ScorerImage, ScorerResult } from './evaluation.js';

/**
 * An ONNX file that is in no registry, scored in this process by the serving code (the
 * deployment's ModelRepository session and dynamic batcher, the worker-pool preprocessing) with the
 * threshold and preprocessing of the file's own metadata. It touches no platform store: the file
 * and the images are the caller's.
 */
export class OnnxFileScorer implements EvaluationScorer {
  readonly takesStoredImages = false;
  readonly batchSize = 256;

  private constructor(
    readonly repository: ModelRepository,
    readonly pool: ImagePool,
    readonly loaded: OnnxModel,
  ) {}

  /** @throws AppError NOT_FOUND for a missing file; the repository's errors for a file that does not load. */
  static async open(file: string, logger: Logger): Promise<OnnxFileScorer> {
    const resolved = path.resolve(file);
    const bytes = await readFile(resolved).catch(() => {
      throw new AppError('NOT_FOUND', `ONNX file '${file}' does not exist or cannot be read`);
    });
    const threads = availableParallelism();
    const repository = new ModelRepository({ logger, source: null, threads, allowedRoots: [], defaultName: 'model' });
    const name = path.basename(resolved, path.extname(resolved)).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'model';
    try {
      const loaded = await repository.loadBytes(bytes, { name, version: `local-${sha256Hex(bytes).slice(0, 12)}`, alias: null, source: { kind: 'file', uri: resolved } });
      return new OnnxFileScorer(repository, new ImagePool({ threads }), loaded);
    } catch (err) {
      await repository.close();
      throw err;
    }
  }

  get model(): EvaluatedModel {
    const m = this.loaded;
    return {
      name: m.name,
      version: m.version,
      alias: m.alias,
      source: m.source,
      sha256: m.sha256,
      threshold: m.threshold,
      threshold_source: m.metadata.threshold ? 'onnx-metadata' : 'default',
      input_size: m.inputSize,
      preprocessing: { ...m.describe().preprocessing },
      heatmap_method: m.heatmapMethod,
      recorded: null,
    };
  }

  async score(images: ScorerImage[], options: { reference: boolean }): Promise<ScorerResult[]> {
    const model = this.loaded;
    const embeddings = options.reference && model.featureShape ? new EmbeddingProjector() : null;
    const release = model.acquire();
    const results: ScorerResult[] = new Array(images.length);
    // In flight at once: enough to fill the batcher, never enough to overflow its queue.
    const { maxBatchSize, maxQueueSize } = model.batcher.options;
    const concurrency = Math.max(1, Math.min(availableParallelism() * 2, maxBatchSize * 2, Math.floor(maxQueueSize / 2) || 1, images.length));
    let next = 0;
    try {
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < images.length) {
            const i = next++;
            results[i] = await this.#scoreOne(images[i]!, options.reference, embeddings);
          }
        }),
      );
      return results;
    } finally {
      release();
    }
  }

  async #scoreOne(image: ScorerImage, reference: boolean, embeddings: EmbeddingProjector | null): Promise<ScorerResult> {
    const model = this.loaded;
    try {
      if (!('bytes' in image)) throw new AppError('INVALID_INPUT', 'a local ONNX file scores files, not stored images');
      const pre = await this.pool.run(image.bytes, model.preprocessing);
      const { output } = await model.batcher.submit(pre.input);
      if (!Number.isFinite(output.probability)) throw new AppError('UNPROCESSABLE', 'the model returned a non-finite probability');
      if (!reference) return { ok: true, probability: output.probability };
      const stats: PredictionStats = { ...pre.stats, sourceFormat: pre.source.format, sourceWidth: pre.source.width, sourceHeight: pre.source.height };
      // The data plane's embedding, exactly (monitoring compares the two).
      const embedding = embeddings && output.features && model.featureShape ? embeddings.embed(output.features, model.featureShape) : null;
      return { ok: true, probability: output.probability, reference: { stats, embedding } };
    } catch (err) {
      return isAppError(err) ? { ok: false, code: err.code, message: err.message } : { ok: false, code: 'UNPROCESSABLE', message: err instanceof Error ? err.message : String(err) };
    }
  }

  async close(): Promise<void> {
    await this.repository.close();
    await this.pool.close();
  }
}
