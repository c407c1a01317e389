import { globalAveragePool } from './cam.js';
import { randomProjection, type Projection } from './drift.js';

/** Seed and size of the embedding projection (stable across restarts, replicas and tools). */
export const EMBEDDING_SEED = 'xray-prediction-embedding-v1';
export const EMBEDDING_DIM = 64;

/**
 * The prediction embedding monitoring compares for drift: a 64-d Gaussian random projection (fixed
 * seed) of the globally pooled `features` output [C,H,W], rounded to 7 significant digits. One
 * implementation for the data plane and `xray evaluate`, so their rows are comparable.
 */
export class EmbeddingProjector {
  readonly #projections = new Map<number, Projection>();

  embed(features: Float32Array, shape: readonly [number, number, number]): number[] {
    const [c, h, w] = shape;
    let project = this.#projections.get(c);
    if (!project) {
      project = randomProjection(c, EMBEDDING_DIM, EMBEDDING_SEED);
      this.#projections.set(c, project);
    }
    return Array.from(project(globalAveragePool(features, c, h, w)), (v) => Number(v.toPrecision(7)));
  }
}
