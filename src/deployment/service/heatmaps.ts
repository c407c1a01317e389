import { createHash } from 'node:crypto';
import type { Cache } from '../../core/cache/index.js';
import { AppError } from '../../core/errors.js';
import type { ObjectStore } from '../../core/objects/index.js';
import { contentRegion, renderHeatmapPng } from '../../core/ml/cam.js';

/**
 * What a heatmap picture is made of: the saliency grid (values in [0, 1]) and the preprocessed
 * image it is drawn over. Stored once per (model version, image bytes) — the same image through
 * the same model always has the same map — and rendered to PNG on demand, so predictions whose
 * heatmap is never looked at cost no PNG encoding.
 */
export interface HeatmapSource {
  grid: Float32Array;
  h: number;
  w: number;
  /** Side of the preprocessed square image. */
  size: number;
  /** size·size greyscale bytes. */
  pixels: Uint8Array;
}

const MAGIC = 0x314d4858; // 'XHM1'
const HEADER = 16;
const PNG_TTL_S = 3600;

/** Object key of a heatmap source: content-derived, shared by every prediction of that image. */
export function heatmapKey(modelName: string, modelVersion: string, imageSha256: string): string {
  const h = createHash('sha256').update(modelName).update('\0').update(modelVersion).update('\0').update(imageSha256).digest('hex');
  return `deployment/heatmaps/${h.slice(0, 2)}/${h}.bin`;
}

export function encodeHeatmapSource(s: HeatmapSource): Buffer {
  if (s.grid.length !== s.h * s.w || s.pixels.length !== s.size * s.size) throw new AppError('INTERNAL', 'heatmap source sizes do not match');
  const buf = Buffer.alloc(HEADER + s.grid.length * 4 + s.pixels.length);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(s.h, 4);
  buf.writeUInt32LE(s.w, 8);
  buf.writeUInt32LE(s.size, 12);
  for (let i = 0; i < s.grid.length; i++) buf.writeFloatLE(s.grid[i]!, HEADER + 4 * i);
  buf.set(s.pixels, HEADER + s.grid.length * 4);
  return buf;
}

export function decodeHeatmapSource(buf: Buffer): HeatmapSource {
  if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC) throw new AppError('INTERNAL', 'stored heatmap is corrupt');
  const h = buf.readUInt32LE(4);
  const w = buf.readUInt32LE(8);
  const size = buf.readUInt32LE(12);
  if (buf.length !== HEADER + h * w * 4 + size * size) throw new AppError('INTERNAL', 'stored heatmap is corrupt');
  const grid = new Float32Array(h * w);
  for (let i = 0; i < grid.length; i++) grid[i] = buf.readFloatLE(HEADER + 4 * i);
  const pixels = new Uint8Array(buf.subarray(HEADER + h * w * 4));
  return { grid, h, w, size, pixels };
}

/**
 * Renders a source as the overlay PNG (deterministic: the same source gives the same bytes).
 * Colour is weighted by the map's value — the map is already scaled by the prediction's
 * probability, so a confident negative shows little or none — and drawn only on the picture,
 * not on letterbox padding.
 */
export function renderHeatmap(s: HeatmapSource): Promise<Buffer> {
  return renderHeatmapPng(s.grid, s.h, s.w, {
    width: s.size,
    height: s.size,
    basePixels: s.pixels,
    opacity: 0.65,
    alphaByValue: true,
    region: contentRegion(s.pixels, s.size, s.size),
  });
}

/**
 * Heatmap sources in the object store and rendered PNGs in the platform cache. Saves run in the
 * background; a read that races its save waits for it.
 */
export class HeatmapStore {
  readonly #objects: ObjectStore;
  readonly #cache: Cache;
  readonly #saving = new Map<string, Promise<void>>();

  constructor(objects: ObjectStore, cache: Cache) {
    this.#objects = objects;
    this.#cache = cache;
  }

  /**
   * Stores a source in the background (called on cache misses only, so almost always new; an
   * overwrite writes the same bytes). Errors are reported to `onError`, not thrown.
   */
  save(key: string, source: HeatmapSource, onError?: (err: unknown) => void): void {
    if (this.#saving.has(key)) return;
    const p = (async () => {
      await this.#objects.put(key, encodeHeatmapSource(source), 'application/octet-stream');
    })()
      .catch((err: unknown) => onError?.(err))
      .finally(() => this.#saving.delete(key));
    this.#saving.set(key, p);
  }

  /** Waits for every background save (used on close). */
  async settle(): Promise<void> {
    await Promise.all([...this.#saving.values()]);
  }

  /**
   * The overlay PNG for a stored source (from the cache when rendered before).
   * @throws AppError NOT_FOUND when no source is stored under `key`.
   */
  async png(key: string): Promise<Buffer> {
    const cacheKey = `deployment:heatmap-png:${key}`;
    const cached = await this.#cache.getBuffer(cacheKey).catch(() => null);
    if (cached) return cached;
    await this.#saving.get(key);
    let raw: Buffer;
    try {
      raw = await this.#objects.get(key);
    } catch (err) {
      if (err instanceof AppError && err.code === 'NOT_FOUND') throw new AppError('NOT_FOUND', 'no heatmap is stored for this prediction');
      throw err;
    }
    const png = await renderHeatmap(decodeHeatmapSource(raw));
    await this.#cache.set(cacheKey, png, PNG_TTL_S).catch(() => {});
    return png;
  }
}
