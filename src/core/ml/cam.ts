/**
 * Saliency maps for the deployment (explain) and monitoring services: class
 * activation maps from a CNN's last feature map, occlusion sensitivity for
 * models without a feature output, and rendering as a colour overlay PNG.
 *
 * Feature maps are a single image in CHW layout (channel-major, row-major
 * within a channel), as an ONNX `[1, C, H, W]` output.
 */
import sharp from 'sharp';
import { invalidInput } from '../errors.js';

/** A 2-D map in row-major order with its size. */
export interface Grid {
  grid: Float32Array;
  h: number;
  w: number;
}

/** Result of {@link occlusionSensitivity}. */
export interface OcclusionMap extends Grid {
  /** Model probability on the unoccluded input. */
  baseline: number;
}

/** Options of {@link renderHeatmapPng}. */
export interface HeatmapPngOptions {
  width: number;
  height: number;
  /** Greyscale image (width·height bytes) to blend under the heat map. */
  basePixels?: Uint8Array;
  /** Weight of the colour map over the base image, in [0, 1] (default 0.45). */
  opacity?: number;
  /**
   * Weight each pixel's colour by its map value (opacity · value): where the map is 0 the base
   * image shows unchanged, instead of a cold-coloured wash over the whole picture.
   */
  alphaByValue?: boolean;
  /** Draw only inside this rectangle (pixel bounds, end exclusive); outside, the base image shows. */
  region?: { x0: number; y0: number; x1: number; y1: number };
}

/**
 * The part of a preprocessed image that is picture, not letterbox padding: the rectangle left
 * after peeling constant rows and columns off each edge.
 */
export function contentRegion(pixels: Uint8Array, width: number, height: number): { x0: number; y0: number; x1: number; y1: number } {
  const rowConstant = (y: number) => {
    const v = pixels[y * width]!;
    for (let x = 1; x < width; x++) if (pixels[y * width + x] !== v) return false;
    return true;
  };
  const colConstant = (x: number, y0: number, y1: number) => {
    const v = pixels[y0 * width + x]!;
    for (let y = y0 + 1; y < y1; y++) if (pixels[y * width + x] !== v) return false;
    return true;
  };
  let y0 = 0;
  let y1 = height;
  while (y0 < y1 && rowConstant(y0)) y0++;
  while (y1 > y0 && rowConstant(y1 - 1)) y1--;
  if (y0 >= y1) return { x0: 0, y0: 0, x1: width, y1: height }; // a flat picture: nothing to peel
  let x0 = 0;
  let x1 = width;
  while (x0 < x1 && colConstant(x0, y0, y1)) x0++;
  while (x1 > x0 && colConstant(x1 - 1, y0, y1)) x1--;
  return x0 < x1 ? { x0, y0, x1, y1 } : { x0: 0, y0: 0, x1: width, y1: height };
}

/** Multiplies a map by `factor` in place (e.g. by the prediction's probability). */
export function scaleMap(grid: Float32Array, factor: number): Float32Array {
  const f = Number.isFinite(factor) ? Math.min(Math.max(factor, 0), 1) : 0;
  for (let i = 0; i < grid.length; i++) grid[i] = grid[i]! * f;
  return grid;
}

/** Options of {@link occlusionSensitivity}. */
export interface OcclusionOptions {
  /** Side of the square patch in pixels (default size/8). */
  patch?: number;
  /** Step between patches (default patch). */
  stride?: number;
  /** Value written into the occluded patch (default 0.5). */
  fill?: number;
  /** Occluded images per model call (default 16). */
  batchSize?: number;
}

function checkDims(dims: Record<string, number>): void {
  for (const [name, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 1) throw invalidInput(`${name} must be a positive integer, got ${v}`);
  }
}

/**
 * ReLU then division by the maximum, in place: values land in [0, 1]. A map
 * with no positive value becomes all zeros.
 */
export function normalizeMap(grid: Float32Array): Float32Array {
  let max = 0;
  for (let i = 0; i < grid.length; i++) if (grid[i] > max) max = grid[i];
  for (let i = 0; i < grid.length; i++) grid[i] = max > 0 && grid[i] > 0 ? grid[i] / max : 0;
  return grid;
}

/**
 * Class activation map (Zhou et al. 2016): ReLU(Σ_c w_c · F_c), normalised to
 * [0, 1]. `weights` are the final linear layer's weights for the class of
 * interest (length c), or Grad-CAM's pooled gradients.
 *
 * @throws AppError INVALID_INPUT when sizes do not match.
 */
export function classActivationMap(
  features: Float32Array,
  c: number,
  h: number,
  w: number,
  weights: ArrayLike<number>,
): Float32Array {
  checkDims({ c, h, w });
  const hw = h * w;
  if (features.length !== c * hw) throw invalidInput(`features has ${features.length} values, expected c·h·w = ${c * hw}`);
  if (weights.length !== c) throw invalidInput(`weights has ${weights.length} values, expected ${c}`);
  const acc = new Float64Array(hw);
  for (let ch = 0; ch < c; ch++) {
    const wc = weights[ch];
    if (wc === 0) continue;
    const off = ch * hw;
    for (let p = 0; p < hw; p++) acc[p] += wc * features[off + p];
  }
  return normalizeMap(Float32Array.from(acc));
}

/**
 * Global average pooling of a CHW feature map → one value per channel (the
 * CNN's penultimate embedding, e.g. for {@link randomProjection}).
 *
 * @throws AppError INVALID_INPUT when sizes do not match.
 */
export function globalAveragePool(features: Float32Array, c: number, h: number, w: number): Float32Array {
  checkDims({ c, h, w });
  const hw = h * w;
  if (features.length !== c * hw) throw invalidInput(`features has ${features.length} values, expected c·h·w = ${c * hw}`);
  const out = new Float32Array(c);
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    const off = ch * hw;
    for (let p = 0; p < hw; p++) s += features[off + p];
    out[ch] = s / hw;
  }
  return out;
}

/**
 * Bilinear resize of an h×w map to outH×outW with half-pixel centres (as
 * PyTorch `interpolate(mode='bilinear', align_corners=False)` and OpenCV),
 * clamping at the borders.
 *
 * @throws AppError INVALID_INPUT when sizes do not match.
 */
export function upsampleBilinear(grid: ArrayLike<number>, h: number, w: number, outH: number, outW: number): Float32Array {
  checkDims({ h, w, outH, outW });
  if (grid.length !== h * w) throw invalidInput(`grid has ${grid.length} values, expected h·w = ${h * w}`);
  const out = new Float32Array(outH * outW);
  const sy = h / outH;
  const sx = w / outW;
  // Horizontal sample positions are the same for every row.
  const x0 = new Int32Array(outW);
  const x1 = new Int32Array(outW);
  const fx = new Float64Array(outW);
  for (let x = 0; x < outW; x++) {
    const src = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
    x0[x] = Math.floor(src);
    x1[x] = Math.min(x0[x] + 1, w - 1);
    fx[x] = src - x0[x];
  }
  for (let y = 0; y < outH; y++) {
    const src = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(src);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = src - y0;
    const r0 = y0 * w;
    const r1 = y1 * w;
    const o = y * outW;
    for (let x = 0; x < outW; x++) {
      const top = grid[r0 + x0[x]] * (1 - fx[x]) + grid[r0 + x1[x]] * fx[x];
      const bottom = grid[r1 + x0[x]] * (1 - fx[x]) + grid[r1 + x1[x]] * fx[x];
      out[o + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/**
 * Turbo colour map (Mikhailov 2019, polynomial fit) from blue (0) through
 * green/yellow (0.5) to dark red (1). Turbo's lowest tenth, almost black, is
 * skipped so cold regions read as blue like jet. Input is clamped to [0, 1];
 * NaN counts as 0.
 *
 * @returns `[r, g, b]` bytes.
 */
export function heatmapColormap(value: number): [number, number, number] {
  const x = 0.1 + 0.9 * (Number.isFinite(value) ? Math.min(Math.max(value, 0), 1) : 0);
  const r = 0.13572138 + x * (4.6153926 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943))));
  const g = 0.09140261 + x * (2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604))));
  const b = 0.1066733 + x * (12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973))));
  const byte = (v: number): number => Math.round(Math.min(Math.max(v, 0), 1) * 255);
  return [byte(r), byte(g), byte(b)];
}

const COLORMAP_LUT: Uint8Array = (() => {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) lut.set(heatmapColormap(i / 255), i * 3);
  return lut;
})();

/**
 * Renders an h×w map with values in [0, 1] (e.g. a CAM; values are clamped)
 * as a width×height PNG: the map is upsampled bilinearly, coloured with
 * {@link heatmapColormap} and, when `basePixels` is given, blended over that
 * greyscale image as `(1 − opacity)·grey + opacity·colour`.
 *
 * @throws AppError INVALID_INPUT on size mismatches or opacity outside [0, 1].
 */
export async function renderHeatmapPng(
  grid: ArrayLike<number>,
  h: number,
  w: number,
  options: HeatmapPngOptions,
): Promise<Buffer> {
  const { width, height, basePixels } = options;
  const opacity = options.opacity ?? 0.45;
  checkDims({ width, height });
  if (!(opacity >= 0 && opacity <= 1)) throw invalidInput('opacity must be in [0, 1]');
  if (basePixels && basePixels.length !== width * height) {
    throw invalidInput(`basePixels has ${basePixels.length} bytes, expected width·height = ${width * height}`);
  }
  const up = upsampleBilinear(grid, h, w, height, width);
  const rgb = Buffer.alloc(width * height * 3);
  const region = options.region;
  for (let p = 0; p < up.length; p++) {
    const v = up[p];
    const value = Number.isFinite(v) ? Math.min(Math.max(v, 0), 1) : 0;
    const idx = Math.round(value * 255) * 3;
    const grey = basePixels ? basePixels[p] : 0;
    let alpha = basePixels ? (options.alphaByValue ? opacity * value : opacity) : 1;
    if (region && basePixels) {
      const x = p % width;
      const y = (p - x) / width;
      if (x < region.x0 || x >= region.x1 || y < region.y0 || y >= region.y1) alpha = 0;
    }
    for (let k = 0; k < 3; k++) rgb[p * 3 + k] = Math.round((1 - alpha) * grey + alpha * COLORMAP_LUT[idx + k]);
  }
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/**
 * Occlusion sensitivity (Zeiler & Fergus 2014): slides a `fill`-valued square
 * patch over the input and records how much the positive-class probability
 * drops at each position. Positive values mark regions the prediction relies
 * on; negative values regions whose removal raises it. Pass the grid through
 * {@link normalizeMap} before rendering.
 *
 * `input` is one image of `channels × size × size` values (channels inferred);
 * `runModel(batch, n)` receives n such images back to back and must return n
 * positive-class probabilities. Patch positions run from 0 in steps of
 * `stride` while the patch fits, so the map is
 * ⌊(size − patch)/stride⌋ + 1 cells on a side.
 *
 * @throws AppError INVALID_INPUT on inconsistent sizes or a model returning the
 *   wrong number of outputs.
 */
export async function occlusionSensitivity(
  runModel: (batch: Float32Array, n: number) => Promise<Float32Array>,
  input: Float32Array,
  size: number,
  options: OcclusionOptions = {},
): Promise<OcclusionMap> {
  checkDims({ size });
  const plane = size * size;
  const channels = input.length / plane;
  if (!Number.isInteger(channels) || channels < 1) {
    throw invalidInput(`input has ${input.length} values, not a multiple of size² = ${plane}`);
  }
  const patch = options.patch ?? Math.max(1, Math.floor(size / 8));
  const stride = options.stride ?? patch;
  const fill = options.fill ?? 0.5;
  const batchSize = options.batchSize ?? 16;
  checkDims({ patch, stride, batchSize });
  if (patch > size) throw invalidInput(`patch ${patch} is larger than the image (${size})`);
  const cells = Math.floor((size - patch) / stride) + 1;

  const call = async (batch: Float32Array, n: number): Promise<Float32Array> => {
    const out = await runModel(batch, n);
    if (out.length !== n) throw invalidInput(`runModel returned ${out.length} values for a batch of ${n}`);
    return out;
  };
  const baseline = (await call(input, 1))[0];
  const grid = new Float32Array(cells * cells);
  const total = cells * cells;
  for (let start = 0; start < total; start += batchSize) {
    const n = Math.min(batchSize, total - start);
    const batch = new Float32Array(n * input.length);
    for (let b = 0; b < n; b++) {
      const off = b * input.length;
      batch.set(input, off);
      const cell = start + b;
      const y0 = Math.floor(cell / cells) * stride;
      const x0 = (cell % cells) * stride;
      for (let ch = 0; ch < channels; ch++) {
        const base = off + ch * plane;
        for (let y = y0; y < y0 + patch; y++) batch.fill(fill, base + y * size + x0, base + y * size + x0 + patch);
      }
    }
    const probs = await call(batch, n);
    for (let b = 0; b < n; b++) grid[start + b] = baseline - probs[b];
  }
  return { grid, h: cells, w: cells, baseline };
}

/** How far two saliency maps agree on where the evidence is. */
export interface MapAgreement {
  /** Spearman rank correlation of the two maps on a common grid, in [-1, 1]; null when one is flat. */
  spearman: number | null;
  level: 'high' | 'moderate' | 'low' | 'undefined';
}

/** Below this rank correlation two maps are said to disagree (flagged in the UI). */
export const LOW_AGREEMENT = 0.3;

function ranks(v: Float32Array): Float64Array {
  const idx = Array.from(v.keys()).sort((a, b) => v[a]! - v[b]!);
  const r = new Float64Array(v.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && v[idx[j + 1]!] === v[idx[i]!]) j++;
    const mean = (i + j) / 2 + 1; // ties share their mean rank
    for (let k = i; k <= j; k++) r[idx[k]!] = mean;
    i = j + 1;
  }
  return r;
}

/**
 * Agreement of two maps of any sizes (e.g. a 7×7 CAM and a 8×8 occlusion map): both are resampled
 * bilinearly onto a `side`×`side` grid and rank-correlated (Spearman). ≥ 0.6 high, ≥ 0.3 moderate,
 * below that low.
 */
export function mapAgreement(a: Grid, b: Grid, side = 16): MapAgreement {
  const ua = upsampleBilinear(a.grid, a.h, a.w, side, side);
  const ub = upsampleBilinear(b.grid, b.h, b.w, side, side);
  const ra = ranks(ua);
  const rb = ranks(ub);
  const n = ra.length;
  const mean = (n + 1) / 2;
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < n; i++) {
    const da = ra[i]! - mean;
    const db = rb[i]! - mean;
    cov += da * db;
    va += da * da;
    vb += db * db;
  }
  if (va === 0 || vb === 0) return { spearman: null, level: 'undefined' };
  const rho = cov / Math.sqrt(va * vb);
  return { spearman: Math.round(rho * 1000) / 1000, level: rho >= 0.6 ? 'high' : rho >= LOW_AGREEMENT ? 'moderate' : 'low' };
}
