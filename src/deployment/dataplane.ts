import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../core/audit/index.js';
import { AppError, isAppError } from '../core/errors.js';
import { imageStats, toModelInput } from '../core/imaging/index.js';
import { EmbeddingProjector } from '../core/ml/embedding.js';
import { classActivationMap, normalizeMap, occlusionSensitivity, scaleMap } from '../core/ml/index.js';
import { sha256Hex } from '../core/objects/index.js';
import type { ModelRepository, LoadedModelInfo } from './model-repository.js';
import type { AbRouter } from './service/ab-router.js';
import { HeatmapStore, heatmapKey, renderHeatmap, type HeatmapSource } from './service/heatmaps.js';
import type { DeploymentMetrics } from './service/metrics.js';
import type { BatchResult } from './service/batcher.js';
import type { HeatmapMethod, InferenceOutput, OnnxModel } from './service/onnx-model.js';
import type { PredictionRecorder } from './service/prediction-recorder.js';
import type { ImagePool, PreprocessedImage } from '../core/imaging/image-pool.js';

/** A decoded upload: its pixels go to the inference thread as they are (no float32 copy). */
type PreprocessOutput = Omit<PreprocessedImage, 'input'>;
import { ResultCache, type CachedPrediction } from './service/result-cache.js';
import {
  type PredictionLabel,
  type PredictionRecord,
  type PredictionStats,
  type PredictionStore,
} from './store/prediction-store.js';

/** Who asked: recorded with every prediction and in the audit trail. */
export interface Caller {
  actor: string;
  requestId: string | null;
}

export interface PredictInput {
  image: Uint8Array;
  /** Model name (default: the service's default model, or the only one loaded). */
  model?: string | null;
  /** Pin a version (bypasses A/B routing). */
  version?: string | null;
  /** Sticky A/B key (`x-client-key`). */
  clientKey?: string | null;
  /** 'inline' renders the heatmap PNG now and returns it. */
  heatmap?: 'url' | 'inline';
}

export interface StageTimings {
  preprocess: number;
  queue: number;
  inference: number;
  heatmap: number;
  total: number;
}

export interface Prediction {
  predictionId: string;
  model: { name: string; version: string };
  variant: string;
  probability: number;
  label: PredictionLabel;
  threshold: number;
  heatmapMethod: HeatmapMethod;
  /** The overlay PNG when `heatmap: 'inline'` was asked for. */
  heatmapPng: Buffer | null;
  cached: boolean;
  imageSha256: string;
  timingsMs: StageTimings;
}

export type BatchItemResult = { ok: true; prediction: Prediction } | { ok: false; error: { code: string; message: string } };

/** One tensor of an Open Inference Protocol request/response, protocol-neutral. */
export interface TensorData {
  name: string;
  shape: number[];
  datatype: string;
  data: ArrayLike<number>;
}

export interface InferInput {
  model: string;
  version?: string | null;
  id?: string | null;
  inputs: TensorData[];
  /** Requested outputs by name (default: probability only). */
  outputs?: string[];
}

export interface InferOutput {
  id: string;
  modelName: string;
  modelVersion: string;
  outputs: TensorData[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: { name: string; datatype: string; shape: number[] }[];
  outputs: { name: string; datatype: string; shape: number[] }[];
}

/** Reads stored image bytes by sha256 (the data pipeline's content-addressed images). */
export interface ImageBytesSource {
  /** @throws AppError NOT_FOUND when no image has this hash. */
  read(hash: string): Promise<Uint8Array>;
}

export interface DataPlaneDeps {
  repository: ModelRepository;
  router: AbRouter;
  pool: ImagePool;
  heatmaps: HeatmapStore;
  results: ResultCache;
  recorder: PredictionRecorder;
  predictions: PredictionStore;
  audit: AuditLog;
  metrics: DeploymentMetrics;
  logger: Logger;
  images?: ImageBytesSource | null;
  /** Model served when a request names none. */
  defaultModel: string;
  service?: string;
}

interface Lease {
  model: OnnxModel;
  variant: string;
  release(): void;
}

const MAX_BATCH_ITEMS = 256;
const MAX_TENSOR_IMAGES = 256;
/** How long a request waits for a load of its model already in progress before MODEL_NOT_READY. */
const LOAD_WAIT_MS = 15_000;

/**
 * The inference data plane (KServe's DataPlane): prediction, batch prediction, explanation,
 * Open Inference Protocol inference, readiness and metadata — protocol-neutral, no HTTP here.
 * Dynamic batching, the result cache, A/B and shadow routing, heatmaps and prediction logging
 * all live behind it, so every protocol gets the same behaviour.
 */
export class DataPlane {
  readonly #d: DataPlaneDeps;
  readonly #embeddings = new EmbeddingProjector();
  readonly #background = new Set<Promise<unknown>>();

  constructor(deps: DataPlaneDeps) {
    this.#d = deps;
  }

  get repository(): ModelRepository {
    return this.#d.repository;
  }

  get router(): AbRouter {
    return this.#d.router;
  }

  /**
   * Predicts one image: routing, cache, decode + preprocess (worker pool), batched inference,
   * heatmap, logging.
   * @throws AppError MODEL_NOT_READY, QUEUE_FULL, INVALID_INPUT, UNSUPPORTED_MEDIA_TYPE,
   *   UNPROCESSABLE, PAYLOAD_TOO_LARGE.
   */
  async predict(input: PredictInput, caller: Caller): Promise<Prediction> {
    const started = performance.now();
    await this.#awaitLoad(input.model, input.version);
    const { primary, shadows } = this.#select(input.model, input.version, input.clientKey);
    try {
      return await this.#predictWith(primary, shadows, input.image, input.heatmap ?? 'url', caller, started);
    } catch (err) {
      this.#countFailure(primary.model.name, primary.variant, err, caller);
      throw err;
    } finally {
      primary.release();
    }
  }

  /**
   * Predicts several images with one routing decision; each image succeeds or fails on its own.
   * @throws AppError INVALID_INPUT for an empty or too long list; MODEL_NOT_READY.
   */
  async predictBatch(images: Uint8Array[], opts: Omit<PredictInput, 'image'>, caller: Caller): Promise<BatchItemResult[]> {
    if (images.length === 0) throw new AppError('INVALID_INPUT', 'the batch holds no images');
    if (images.length > MAX_BATCH_ITEMS) throw new AppError('INVALID_INPUT', `a batch may hold at most ${MAX_BATCH_ITEMS} images, got ${images.length}`);
    await this.#awaitLoad(opts.model, opts.version);
    const selected = this.#select(opts.model, opts.version, opts.clientKey);
    const { primary } = selected;
    const results: BatchItemResult[] = new Array(images.length);
    // Feed the batcher without overrunning the bounded queue shared with other clients.
    const { maxBatchSize, maxQueueSize } = primary.model.batcher.options;
    const concurrency = Math.max(1, Math.min(images.length, maxBatchSize * 2, Math.floor(maxQueueSize / 2) || 1));
    let next = 0;
    const shadowModels = selected.shadows;
    try {
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < images.length) {
            const i = next++;
            const itemStarted = performance.now();
            // Shadows need a lease per item: each mirrored call ends on its own time.
            const itemShadows = this.#leaseShadows(shadowModels);
            try {
              const prediction = await this.#predictWith(primary, itemShadows, images[i]!, opts.heatmap ?? 'url', caller, itemStarted);
              results[i] = { ok: true, prediction };
            } catch (err) {
              this.#countFailure(primary.model.name, primary.variant, err, caller);
              results[i] = { ok: false, error: errorOf(err) };
            }
          }
        }),
      );
    } finally {
      primary.release();
      for (const s of shadowModels) s.release();
    }
    return results;
  }

  /**
   * Predicts images stored by the data pipeline, by sha256.
   * @throws AppError SERVICE_UNAVAILABLE when no image store is wired in.
   */
  async predictStored(hashes: string[], opts: Omit<PredictInput, 'image'>, caller: Caller): Promise<BatchItemResult[]> {
    const images = this.#d.images;
    if (!images) throw new AppError('SERVICE_UNAVAILABLE', 'stored images are not available to this deployment service; upload the files instead');
    if (hashes.length === 0) throw new AppError('INVALID_INPUT', 'hashes is empty');
    if (hashes.length > MAX_BATCH_ITEMS) throw new AppError('INVALID_INPUT', `at most ${MAX_BATCH_ITEMS} hashes per request, got ${hashes.length}`);
    const read = await Promise.all(hashes.map((h) => images.read(h).then((b) => ({ ok: true as const, b }), (err: unknown) => ({ ok: false as const, err }))));
    const present = read.flatMap((r, i) => (r.ok ? [{ i, b: r.b }] : []));
    const out: BatchItemResult[] = read.map((r) => (r.ok ? (null as unknown as BatchItemResult) : { ok: false, error: errorOf(r.err) }));
    if (present.length > 0) {
      const predicted = await this.predictBatch(present.map((p) => p.b), opts, caller);
      present.forEach((p, k) => (out[p.i] = predicted[k]!));
    }
    return out;
  }

  /**
   * Open Inference Protocol v2 inference on preprocessed tensors: input `input` FP32
   * [N, 1, S, S] with values pixel/255. Each image goes through the same batcher as /predict.
   * @throws AppError INVALID_INPUT on a wrong name, datatype, shape or data length; MODEL_NOT_READY.
   */
  async infer(req: InferInput, caller: Caller): Promise<InferOutput> {
    const started = performance.now();
    await this.#d.repository.whenLoaded(req.model, req.version, LOAD_WAIT_MS);
    const model = this.#d.repository.lookup(req.model, req.version);
    const release = model.acquire();
    const variant = req.version ? 'pinned' : 'default';
    try {
      const s = model.inputSize;
      if (req.inputs.length !== 1) throw new AppError('INVALID_INPUT', `expected exactly one input tensor '${model.inputName}', got ${req.inputs.length}`);
      const t = req.inputs[0]!;
      if (t.name !== model.inputName) throw new AppError('INVALID_INPUT', `unknown input '${t.name}'; the model's input is '${model.inputName}'`);
      if (t.datatype !== 'FP32') throw new AppError('INVALID_INPUT', `input '${t.name}' must be FP32, got ${t.datatype}`);
      const [n, c, h, w] = t.shape;
      if (t.shape.length !== 4 || c !== 1 || h !== s || w !== s || !Number.isInteger(n) || n! < 1) {
        throw new AppError('INVALID_INPUT', `input '${t.name}' must have shape [N, 1, ${s}, ${s}], got [${t.shape.join(', ')}]`);
      }
      if (n! > MAX_TENSOR_IMAGES) throw new AppError('INVALID_INPUT', `at most ${MAX_TENSOR_IMAGES} images per request, got ${n}`);
      const plane = s * s;
      if (t.data.length !== n! * plane) {
        throw new AppError('INVALID_INPUT', `input '${t.name}' has ${t.data.length} values; shape [${t.shape.join(', ')}] needs ${n! * plane}`);
      }
      const wanted = req.outputs && req.outputs.length > 0 ? req.outputs : ['probability'];
      for (const o of wanted) {
        if (o !== 'probability' && o !== 'features') throw new AppError('INVALID_INPUT', `unknown output '${o}'; outputs are probability, features`);
        if (o === 'features' && !model.featureShape) throw new AppError('INVALID_INPUT', 'this model has no features output');
      }
      const data = Float32Array.from(t.data);
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) throw new AppError('INVALID_INPUT', `input '${t.name}' holds a non-finite value at index ${i}`);
      }
      const images = Array.from({ length: n! }, (_, i) => data.slice(i * plane, (i + 1) * plane));
      const pending: Promise<BatchResult<InferenceOutput>>[] = [];
      try {
        for (const x of images) pending.push(model.batcher.submit(x));
      } catch (err) {
        // Queue full part-way: the images already queued still run; nobody waits for them.
        for (const p of pending) p.catch(() => {});
        throw err;
      }
      const results = await Promise.all(pending);
      const totalMs = performance.now() - started;
      const outputs: TensorData[] = [];
      for (const o of wanted) {
        if (o === 'probability') outputs.push({ name: 'probability', datatype: 'FP32', shape: [n!, 1], data: results.map((r) => r.output.probability) });
        else {
          const [fc, fh, fw] = model.featureShape!;
          const flat = new Float32Array(n! * fc * fh * fw);
          results.forEach((r, i) => flat.set(r.output.features!, i * fc * fh * fw));
          outputs.push({ name: 'features', datatype: 'FP32', shape: [n!, fc, fh, fw], data: flat });
        }
      }
      results.forEach((r, i) => {
        const x = images[i]!;
        const pixels = new Uint8Array(plane);
        for (let k = 0; k < plane; k++) pixels[k] = Math.min(255, Math.max(0, Math.round(x[k]! * 255)));
        const stats: PredictionStats = { ...imageStats(pixels, s, s), sourceFormat: 'tensor', sourceWidth: s, sourceHeight: s };
        this.#log(model, variant, false, {
          probability: r.output.probability,
          sha: sha256Hex(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)),
          heatmapMethod: null,
          stats,
          embedding: this.#embedding(model, r.output.features),
          latencyMs: totalMs,
          cached: false,
          caller,
        });
        this.#observe(model, { preprocess: 0, queue: r.queueMs, inference: r.inferenceMs, heatmap: 0, total: totalMs });
      });
      return { id: req.id ?? randomUUID(), modelName: model.name, modelVersion: model.version, outputs };
    } catch (err) {
      this.#countFailure(model.name, variant, err, caller);
      throw err;
    } finally {
      release();
    }
  }

  /**
   * The heatmap overlay PNG of a prediction (rendered on first request, then cached).
   * @throws AppError NOT_FOUND for an unknown prediction or one without a heatmap.
   */
  async explain(predictionId: string): Promise<Buffer> {
    const record = await this.getPrediction(predictionId);
    if (!record.heatmapMethod || record.shadow) throw new AppError('NOT_FOUND', `prediction '${predictionId}' has no heatmap`);
    return this.#d.heatmaps.png(heatmapKey(record.modelName, record.modelVersion, record.imageSha256));
  }

  /** A logged prediction (buffered records are written first). @throws AppError NOT_FOUND. */
  async getPrediction(id: string): Promise<PredictionRecord> {
    await this.#d.recorder.flush().catch(() => {});
    return this.#d.predictions.require(id);
  }

  /** Whether a model (version) is loaded and ready. */
  modelReady(name: string, version?: string | null): boolean {
    return this.#d.repository.isReady(name, version);
  }

  /** Whether the server can predict: at least one model is loaded and ready. */
  serverReady(): boolean {
    return this.#d.repository.names().some((n) => this.#d.repository.isReady(n));
  }

  /** Loaded models (with their batching statistics). */
  models(): LoadedModelInfo[] {
    return this.#d.repository.list();
  }

  /**
   * Open Inference Protocol model metadata.
   * @throws AppError MODEL_NOT_READY when not loaded.
   */
  metadata(name: string, version?: string | null): ModelMetadata {
    const model = this.#d.repository.lookup(name, version);
    const versions = this.#d.repository
      .list()
      .filter((m) => m.name === name)
      .map((m) => m.version);
    const s = model.inputSize;
    const outputs = [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }];
    if (model.featureShape) outputs.push({ name: 'features', datatype: 'FP32', shape: [-1, ...model.featureShape] });
    return { name, versions, platform: 'onnxruntime_onnx', inputs: [{ name: model.inputName, datatype: 'FP32', shape: [-1, 1, s, s] }], outputs };
  }

  /** Waits for background work (shadow calls, heatmap saves) and flushes prediction records. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#background]);
    await this.#d.heatmaps.settle();
    await this.#d.recorder.flush().catch(() => {});
  }

  // ——— internals ———

  /** A request that arrives while its model is loading (a replica just started) waits for the load instead of failing. */
  #awaitLoad(model: string | null | undefined, version: string | null | undefined): Promise<void> {
    return this.#d.repository.whenLoaded(this.#modelName(model), version, LOAD_WAIT_MS);
  }

  #modelName(requested: string | null | undefined): string {
    if (requested) return requested;
    const repo = this.#d.repository;
    const names = repo.names();
    if (names.includes(this.#d.defaultModel) || names.length !== 1) return this.#d.defaultModel;
    return names[0]!;
  }

  /** Picks the model version(s) for a request and leases them (synchronously, so a swap cannot interleave). */
  #select(model: string | null | undefined, version: string | null | undefined, clientKey: string | null | undefined): { primary: Lease; shadows: Lease[] } {
    const name = this.#modelName(model);
    const repo = this.#d.repository;
    if (version) {
      const m = repo.lookup(name, version);
      return { primary: { model: m, variant: 'pinned', release: m.acquire() }, shadows: [] };
    }
    const decision = this.#d.router.route(name, clientKey);
    if (!decision) {
      const m = repo.lookup(name);
      return { primary: { model: m, variant: 'default', release: m.acquire() }, shadows: [] };
    }
    const m = repo.lookup(name, decision.variant.version);
    const primary = { model: m, variant: decision.variant.name, release: m.acquire() };
    const shadows: Lease[] = [];
    for (const v of decision.shadows) {
      try {
        const sm = repo.lookup(name, v.version);
        shadows.push({ model: sm, variant: v.name, release: sm.acquire() });
      } catch (err) {
        this.#d.logger.warn({ model: name, version: v.version, err: errorOf(err).message }, 'shadow variant is not loaded; skipped');
      }
    }
    return { primary, shadows };
  }

  #leaseShadows(shadows: Lease[]): Lease[] {
    return shadows.flatMap((s) => {
      try {
        return [{ model: s.model, variant: s.variant, release: s.model.acquire() }];
      } catch {
        return [];
      }
    });
  }

  async #predictWith(lease: Lease, shadows: Lease[], image: Uint8Array, heatmap: 'url' | 'inline', caller: Caller, started: number): Promise<Prediction> {
    const { model, variant } = lease;
    let pre: PreprocessOutput | null = null;
    try {
      if (!image || image.length === 0) throw new AppError('INVALID_INPUT', 'the image is empty (0 bytes)');
      const sha = sha256Hex(image);
      const cacheKey = ResultCache.key(model.name, model.version, model.preprocessingHash, sha);
      const hmKey = heatmapKey(model.name, model.version, sha);
      const timings: StageTimings = { preprocess: 0, queue: 0, inference: 0, heatmap: 0, total: 0 };
      let result: CachedPrediction | null = await this.#d.results.get(cacheKey);
      const cached = result !== null;
      let heatmapPng: Buffer | null = null;
      if (!result) {
        const reservation = model.batcher.reserve();
        const tp = performance.now();
        try {
          pre = await this.#d.pool.run(image, model.preprocessing, { tensor: false });
        } catch (err) {
          reservation.cancel();
          throw err;
        }
        timings.preprocess = performance.now() - tp;
        const batch = await model.batcher.submit(pre.pixels, reservation);
        timings.queue = batch.queueMs;
        timings.inference = batch.inferenceMs;
        const th = performance.now();
        const saliency = await this.#saliency(model, batch.output.features, pre.pixels);
        // Honest brightness: the map's shape says where, the prediction says how much.
        scaleMap(saliency.grid, batch.output.probability);
        const source: HeatmapSource = { ...saliency, size: model.inputSize, pixels: pre.pixels };
        this.#d.heatmaps.save(hmKey, source, (err) => this.#d.logger.error({ err }, 'saving a heatmap failed'));
        if (heatmap === 'inline') heatmapPng = await renderHeatmap(source);
        timings.heatmap = performance.now() - th;
        result = {
          probability: batch.output.probability,
          heatmapMethod: model.heatmapMethod,
          stats: { ...pre.stats, sourceFormat: pre.source.format, sourceWidth: pre.source.width, sourceHeight: pre.source.height },
          embedding: this.#embedding(model, batch.output.features),
        };
        this.#d.results.set(cacheKey, result);
      } else if (heatmap === 'inline') {
        const th = performance.now();
        heatmapPng = await this.#d.heatmaps.png(hmKey);
        timings.heatmap = performance.now() - th;
      }
      timings.total = performance.now() - started;
      const id = this.#log(model, variant, false, {
        probability: result.probability,
        sha,
        heatmapMethod: result.heatmapMethod,
        stats: result.stats,
        embedding: result.embedding,
        latencyMs: timings.total,
        cached,
        caller,
      });
      this.#observe(model, timings);
      const done = pre ? { out: pre, hash: model.preprocessingHash } : null;
      for (const s of shadows.splice(0)) this.#mirror(s, image, sha, done, caller);
      return {
        predictionId: id,
        model: { name: model.name, version: model.version },
        variant,
        probability: result.probability,
        label: labelOf(result.probability, model.threshold),
        threshold: model.threshold,
        heatmapMethod: result.heatmapMethod,
        heatmapPng,
        cached,
        imageSha256: sha,
        timingsMs: timings,
      };
    } finally {
      for (const s of shadows) s.release();
    }
  }

  /** Shadow mode: the same image through another version, logged only; never affects the response. */
  #mirror(lease: Lease, image: Uint8Array, sha: string, pre: { out: PreprocessOutput; hash: string } | null, caller: Caller): void {
    const started = performance.now();
    const { model, variant } = lease;
    const task = (async () => {
      const cacheKey = ResultCache.key(model.name, model.version, model.preprocessingHash, sha);
      let result = await this.#d.results.get(cacheKey);
      const cached = result !== null;
      if (!result) {
        const reservation = model.batcher.reserve();
        let input: PreprocessOutput;
        try {
          // The primary's pixels are reusable when both versions preprocess alike.
          input = pre && pre.hash === model.preprocessingHash ? pre.out : await this.#d.pool.run(image, model.preprocessing, { tensor: false });
        } catch (err) {
          reservation.cancel();
          throw err;
        }
        const batch = await model.batcher.submit(input.pixels, reservation);
        result = {
          probability: batch.output.probability,
          heatmapMethod: model.heatmapMethod,
          stats: { ...input.stats, sourceFormat: input.source.format, sourceWidth: input.source.width, sourceHeight: input.source.height },
          embedding: this.#embedding(model, batch.output.features),
        };
        this.#d.results.set(cacheKey, result);
      }
      this.#log(model, variant, true, {
        probability: result.probability,
        sha,
        heatmapMethod: null,
        stats: result.stats,
        embedding: result.embedding,
        latencyMs: performance.now() - started,
        cached,
        caller,
      });
    })()
      .catch((err: unknown) => {
        this.#countFailure(model.name, variant, err);
        this.#d.logger.warn({ model: model.name, version: model.version, err: errorOf(err).message }, 'shadow prediction failed');
      })
      .finally(() => {
        lease.release();
        this.#background.delete(task);
      });
    this.#background.add(task);
  }

  async #saliency(model: OnnxModel, features: Float32Array | null, pixels: Uint8Array): Promise<{ grid: Float32Array; h: number; w: number }> {
    const shape = model.featureShape;
    if (model.heatmapMethod === 'cam' && features && shape) {
      const [c, h, w] = shape;
      return { grid: classActivationMap(features, c, h, w, model.classifierWeight!), h, w };
    }
    const input = toModelInput(pixels, model.inputSize);
    const occ = await occlusionSensitivity(async (batch, n) => (await model.runRaw(batch, n)).probability, input, model.inputSize, { batchSize: 16 });
    return { grid: normalizeMap(occ.grid), h: occ.h, w: occ.w };
  }

  #embedding(model: OnnxModel, features: Float32Array | null): number[] | null {
    const shape = model.featureShape;
    return features && shape ? this.#embeddings.embed(features, shape) : null;
  }

  #log(
    model: OnnxModel,
    variant: string,
    shadow: boolean,
    r: {
      probability: number;
      sha: string;
      heatmapMethod: HeatmapMethod | null;
      stats: PredictionStats;
      embedding: number[] | null;
      latencyMs: number;
      cached: boolean;
      caller: Caller;
    },
  ): string {
    const id = randomUUID();
    const label = labelOf(r.probability, model.threshold);
    this.#d.recorder.record({
      id,
      time: Date.now(),
      modelName: model.name,
      modelVersion: model.version,
      variant,
      shadow,
      probability: r.probability,
      label,
      threshold: model.threshold,
      imageSha256: r.sha,
      heatmapMethod: r.heatmapMethod,
      stats: r.stats,
      embedding: r.embedding,
      latencyMs: r.latencyMs,
      requestId: r.caller.requestId,
      actor: r.caller.actor,
      cached: r.cached,
    });
    this.#d.audit.record({
      actor: r.caller.actor,
      action: shadow ? 'prediction.shadow' : 'prediction.create',
      resource: `prediction:${id}`,
      outcome: 'success',
      requestId: r.caller.requestId,
      service: this.#d.service ?? 'deployment',
      details: { model: model.name, version: model.version, variant, probability: r.probability, label, cached: r.cached },
    });
    this.#d.metrics.predictions.inc({
      model: model.name,
      version: model.version,
      variant,
      label,
      cached: String(r.cached),
      shadow: String(shadow),
    });
    return id;
  }

  #observe(model: OnnxModel, t: StageTimings): void {
    const m = this.#d.metrics;
    for (const stage of ['preprocess', 'queue', 'inference', 'heatmap', 'total'] as const) m.observeStage(stage, model.name, model.version, t[stage]);
  }

  /** Counts a failed prediction; a caller's failed request also lands in the audit trail (error-rate alerts read it). */
  #countFailure(model: string, variant: string, err: unknown, caller?: Caller): void {
    const { code, message } = errorOf(err);
    this.#d.metrics.failures.inc({ model, variant, code });
    if (!caller) return;
    this.#d.audit.record({
      actor: caller.actor,
      action: 'prediction.create',
      resource: `model:${model}`,
      outcome: 'failure',
      requestId: caller.requestId,
      service: this.#d.service ?? 'deployment',
      details: { variant, code, message },
    });
  }
}

export function labelOf(probability: number, threshold: number): PredictionLabel {
  return probability >= threshold ? 'PNEUMONIA' : 'NORMAL';
}

function errorOf(err: unknown): { code: string; message: string } {
  if (isAppError(err)) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: 'internal error; see the service log' };
}
