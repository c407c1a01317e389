import { createHash } from 'node:crypto';
import type { Cache } from '../../core/cache/index.js';
import type { PredictionStats } from '../store/prediction-store.js';
import type { HeatmapMethod } from './onnx-model.js';

/** What a repeat of the same image through the same model version can reuse. */
export interface CachedPrediction {
  probability: number;
  heatmapMethod: HeatmapMethod;
  stats: PredictionStats;
  embedding: number[] | null;
}

export interface ResultCacheCounters {
  hit(): void;
  miss(): void;
}

const TTL_S = 24 * 3600;

/**
 * Prediction results keyed by (model name, version, preprocessing, sha256 of the image bytes), in
 * the platform cache (in-process LRU or Redis, per configuration). Cache failures count as misses.
 */
export class ResultCache {
  readonly #cache: Cache;
  readonly #counters: ResultCacheCounters;

  constructor(cache: Cache, counters: ResultCacheCounters) {
    this.#cache = cache;
    this.#counters = counters;
  }

  static key(modelName: string, modelVersion: string, preprocessingHash: string, imageSha256: string): string {
    const h = createHash('sha256').update(`${modelName}\0${modelVersion}\0${preprocessingHash}\0${imageSha256}`).digest('hex');
    return `deployment:prediction:${h}`;
  }

  async get(key: string): Promise<CachedPrediction | null> {
    let text: string | null = null;
    try {
      text = await this.#cache.get(key);
    } catch {
      text = null;
    }
    let value: CachedPrediction | null = null;
    if (text) {
      try {
        value = JSON.parse(text) as CachedPrediction;
      } catch {
        value = null;
      }
    }
    if (value && Number.isFinite(value.probability)) {
      this.#counters.hit();
      return value;
    }
    this.#counters.miss();
    return null;
  }

  set(key: string, value: CachedPrediction): void {
    void this.#cache.set(key, JSON.stringify(value), TTL_S).catch(() => {});
  }
}
