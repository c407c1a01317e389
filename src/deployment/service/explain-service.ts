import { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Platform } from '../../core/platform.js';
import { AppError, isAppError } from '../../core/errors.js';
import type { ImagePool } from '../../core/imaging/image-pool.js';
import { toModelInput } from '../../core/imaging/preprocess.js';
import { contentRegion, mapAgreement, normalizeMap, occlusionSensitivity, renderHeatmapPng, scaleMap, type MapAgreement } from '../../core/ml/cam.js';
import { DataPlane, type Caller } from '../dataplane.js';
import { ModelRepository } from '../model-repository.js';
import type { PredictionPage, PredictionRecord, PredictionStore } from '../store/prediction-store.js';
import { AbRouter } from './ab-router.js';
import { decodeHeatmapSource, heatmapKey, HeatmapStore, renderHeatmap, type HeatmapSource } from './heatmaps.js';
import { DeploymentMetrics } from './metrics.js';
import type { OnnxModel } from './onnx-model.js';
import { PredictionRecorder } from './prediction-recorder.js';
import type { ModelSource } from './model-source.js';
import { ResultCache } from './result-cache.js';

/** A saliency map as PNG overlay plus the raw grid (row-major, values in [0, 1]). */
export interface SaliencyMap {
  method: 'cam' | 'occlusion';
  h: number;
  w: number;
  grid: number[];
  png: Buffer;
}

export interface Explanation {
  predictionId: string | null;
  model: string;
  version: string;
  probability: number;
  threshold: number;
  imageSha256: string;
  /** The deployment service's heatmap (class activation map, or occlusion for models without features). */
  heatmap: SaliencyMap;
  /** Occlusion sensitivity: the model-agnostic second opinion. */
  occlusion: SaliencyMap & { patch: number; stride: number; baseline: number };
  /** Whether the two maps point at the same regions (Spearman on a common grid); low is a warning. */
  agreement: MapAgreement;
}

export interface ExplainOptions {
  /** Occlusion patch side in pixels (default size/8). */
  patch?: number;
  /** Occlusion stride (default patch). */
  stride?: number;
}

export interface ExplainServiceDeps {
  platform: Platform;
  logger: Logger;
  /** The serving repository: a version it has loaded is explained with the same session, no second copy. */
  serving: ModelRepository;
  /** Where versions that are not being served are loaded from (the registry). */
  source: ModelSource | null;
  pool: ImagePool;
  predictions: PredictionStore;
  /**
   * The serving data plane's heatmap store. Shared so that explaining an image /predict has just
   * answered (a result-cache hit here, so nothing is saved again) waits for that save to land.
   */
  heatmaps?: HeatmapStore;
}

/**
 * Explanations in the deployment's data plane (KServe's `DataPlane.explain`): the prediction and
 * its heatmap come from the same data-plane code as /predict — on the serving repository's session
 * when the version is being served, else on a private repository that loads it from the registry;
 * the occlusion map runs core `occlusionSensitivity` on the same model and the same preprocessed
 * pixels. Explanations of uploads are audited but not logged as prediction records, so they never
 * enter drift windows or traffic gauges.
 */
export class ExplainService {
  readonly #d: ExplainServiceDeps;
  readonly #records: PredictionStore;
  readonly #heatmaps: HeatmapStore;
  #servingPlane: DataPlane | null = null;
  #private: { dataplane: DataPlane; repository: ModelRepository } | null = null;
  #closed = false;

  constructor(deps: ExplainServiceDeps) {
    this.#d = deps;
    this.#records = deps.predictions;
    this.#heatmaps = deps.heatmaps ?? new HeatmapStore(deps.platform.objects, deps.platform.cache);
  }

  #plane(repository: ModelRepository, metrics: DeploymentMetrics): DataPlane {
    const { platform, logger, pool } = this.#d;
    return new DataPlane({
      repository,
      router: new AbRouter(),
      pool,
      heatmaps: this.#heatmaps,
      results: new ResultCache(platform.cache, { hit: () => {}, miss: () => {} }),
      recorder: new PredictionRecorder(DISCARD),
      predictions: this.#records,
      audit: platform.audit,
      metrics,
      logger,
      defaultModel: platform.config.defaultModel,
    });
  }

  /** The data plane and repository holding `model`@`version` (default: its production version), loading it privately when it is not served. */
  async #planeFor(model: string, version?: string | null): Promise<{ dataplane: DataPlane; repository: ModelRepository; name: string; version: string }> {
    if (this.#closed) throw new AppError('SERVICE_UNAVAILABLE', 'the service is shutting down');
    const { serving } = this.#d;
    const wanted = version ?? (await serving.resolveVersion(model, 'production')) ?? serving.defaultVersion(model);
    if (wanted && serving.isReady(model, wanted)) {
      this.#servingPlane ??= this.#plane(serving, new DeploymentMetrics(new Registry()));
      return { dataplane: this.#servingPlane, repository: serving, name: model, version: wanted };
    }
    if (!this.#private) {
      const metrics = new DeploymentMetrics(new Registry());
      const repository = new ModelRepository({ logger: this.#d.logger, metrics, source: this.#d.source, threads: 1, allowedRoots: [], defaultName: this.#d.platform.config.defaultModel });
      this.#private = { repository, dataplane: this.#plane(repository, metrics) };
    }
    const info = await this.#private.repository.load({ name: model, ...(version ? { version } : { alias: 'production' }), makeDefault: true });
    return { ...this.#private, name: info.name, version: info.version };
  }

  /** Explains an uploaded image with a registry model version (default: the default model's production version). */
  async explainImage(image: Uint8Array, target: { model?: string | null; version?: string | null }, caller: Caller, options: ExplainOptions = {}): Promise<Explanation> {
    const { dataplane, repository, name, version } = await this.#planeFor(target.model ?? this.#d.platform.config.defaultModel, target.version);
    const p = await dataplane.predict({ image, model: name, version, heatmap: 'inline' }, caller);
    await dataplane.settle();
    const source = await this.#sourceSoon(p.model.name, p.model.version, p.imageSha256);
    const explanation = await this.#explain(repository.lookup(p.model.name, p.model.version), { id: null, model: p.model.name, version: p.model.version, probability: p.probability, threshold: p.threshold, sha: p.imageSha256, method: p.heatmapMethod }, source, options, p.heatmapPng);
    this.#audit(caller, `image:${p.imageSha256}`, explanation);
    return explanation;
  }

  /** Explains a logged prediction from its stored heatmap source (the preprocessed pixels). */
  async explainPrediction(predictionId: string, caller: Caller, options: ExplainOptions = {}): Promise<Explanation> {
    const record = await this.#records.get(predictionId);
    if (!record) throw new AppError('NOT_FOUND', `prediction '${predictionId}' does not exist`);
    if (!record.heatmapMethod || record.shadow) throw new AppError('NOT_FOUND', `prediction '${predictionId}' has no stored heatmap to explain`);
    const source = await this.#source(record.modelName, record.modelVersion, record.imageSha256);
    const { repository, name, version } = await this.#planeFor(record.modelName, record.modelVersion);
    const explanation = await this.#explain(repository.lookup(name, version), recordTarget(record), source, options, null);
    this.#audit(caller, `prediction:${predictionId}`, explanation);
    return explanation;
  }

  /**
   * The source of a prediction just made. A result-cache hit saves nothing, and the save of the
   * prediction that filled the cache may still be in flight on another replica: wait up to ~2 s.
   */
  async #sourceSoon(model: string, version: string, sha: string): Promise<HeatmapSource> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#source(model, version, sha);
      } catch (err) {
        if (!isAppError(err) || err.code !== 'NOT_FOUND' || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async #source(model: string, version: string, sha: string): Promise<HeatmapSource> {
    try {
      return decodeHeatmapSource(await this.#d.platform.objects.get(heatmapKey(model, version, sha)));
    } catch (err) {
      if (isAppError(err) && err.code === 'NOT_FOUND') throw new AppError('NOT_FOUND', 'no heatmap is stored for this prediction');
      throw err;
    }
  }

  async #explain(
    model: OnnxModel,
    t: { id: string | null; model: string; version: string; probability: number; threshold: number; sha: string; method: 'cam' | 'occlusion' },
    source: HeatmapSource,
    options: ExplainOptions,
    heatmapPng: Buffer | null,
  ): Promise<Explanation> {
    const size = source.size;
    const patch = options.patch ?? Math.max(1, Math.floor(size / 8));
    const stride = options.stride ?? patch;
    if (patch > size || stride > size) throw new AppError('INVALID_INPUT', `patch and stride must be at most the model input size (${size})`);
    const occ = await occlusionSensitivity(async (batch, n) => (await model.runRaw(batch, n)).probability, toModelInput(source.pixels, size), size, { patch, stride, batchSize: 16 });
    const occShape = normalizeMap(Float32Array.from(occ.grid));
    const agreement = mapAgreement({ grid: source.grid, h: source.h, w: source.w }, { grid: occShape, h: occ.h, w: occ.w });
    // Drawn like the deployment's heatmap: brightness scaled by the probability, only on the picture.
    const occGrid = scaleMap(Float32Array.from(occShape), occ.baseline);
    const occPng = await renderHeatmapPng(occGrid, occ.h, occ.w, { width: size, height: size, basePixels: source.pixels, opacity: 0.65, alphaByValue: true, region: contentRegion(source.pixels, size, size) });
    return {
      predictionId: t.id,
      model: t.model,
      version: t.version,
      probability: t.probability,
      threshold: t.threshold,
      imageSha256: t.sha,
      heatmap: { method: t.method, h: source.h, w: source.w, grid: rounded(source.grid), png: heatmapPng ?? (await renderHeatmap(source)) },
      occlusion: { method: 'occlusion', h: occ.h, w: occ.w, grid: rounded(occGrid), png: occPng, patch, stride, baseline: occ.baseline },
      agreement,
    };
  }

  #audit(caller: Caller, resource: string, e: Explanation): void {
    this.#d.platform.audit.record({
      actor: caller.actor,
      action: 'explain.create',
      resource,
      requestId: caller.requestId,
      service: 'deployment',
      details: { model: e.model, version: e.version, heatmap_method: e.heatmap.method, probability: e.probability },
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#servingPlane?.settle().catch(() => {});
    const plane = this.#private;
    this.#private = null;
    if (!plane) return;
    await plane.dataplane.settle().catch(() => {});
    await plane.repository.close();
  }
}

function recordTarget(r: PredictionRecord) {
  return { id: r.id, model: r.modelName, version: r.modelVersion, probability: r.probability, threshold: r.threshold, sha: r.imageSha256, method: r.heatmapMethod ?? ('occlusion' as const) };
}

function rounded(grid: ArrayLike<number>): number[] {
  return Array.from(grid, (v) => Math.round(v * 1e4) / 1e4);
}

/** Explanations are not prediction records: the explaining data plane's recorder writes nowhere. */
const DISCARD: PredictionStore = {
  async insertMany() {},
  async get() {
    return null;
  },
  async require(id: string): Promise<PredictionRecord> {
    throw new AppError('NOT_FOUND', `prediction '${id}' does not exist`);
  },
  async list(): Promise<PredictionPage> {
    return { items: [] };
  },
};
