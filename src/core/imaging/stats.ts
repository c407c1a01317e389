/**
 * Cheap, deterministic statistics of an 8-bit greyscale image. Computed for every ingested
 * image and every prediction; they feed quality checks and drift monitoring.
 */
import { AppError } from '../errors.js';

export interface ImageStats {
  mean: number;
  /** Population standard deviation. */
  std: number;
  min: number;
  max: number;
  /** 1st percentile: the smallest grey level with at least 1 % of pixels at or below it. */
  p01: number;
  /** 99th percentile, same definition. */
  p99: number;
  /** Shannon entropy of the 256-bin histogram, in bits (0..8). */
  entropy: number;
  /** Fraction of pixels at grey level ≤ 2. */
  clipLowFrac: number;
  /** Fraction of pixels at grey level ≥ 253. */
  clipHighFrac: number;
  /** Variance of the 4-neighbour Laplacian over interior pixels: higher = sharper. */
  laplacianVariance: number;
  /** Fraction of interior pixels whose central-difference gradient |dx| + |dy| exceeds 40. */
  edgeDensity: number;
}

const EDGE_THRESHOLD = 40;

function percentile(hist: Uint32Array, n: number, q: number): number {
  const rank = Math.max(1, Math.ceil(q * n));
  let cum = 0;
  for (let v = 0; v < 256; v++) {
    cum += hist[v]!;
    if (cum >= rank) return v;
  }
  return 255;
}

/**
 * Statistics of `width × height` row-major 8-bit grey pixels. One histogram pass plus one
 * neighbourhood pass; no allocation beyond the 256-bin histogram.
 * @throws AppError INVALID_INPUT when sizes do not match or the image is empty.
 */
export function imageStats(pixels: Uint8Array, width: number, height: number): ImageStats {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || pixels.length !== width * height) {
    throw new AppError('INVALID_INPUT', `imageStats: ${pixels.length} pixels do not make a ${width}x${height} image`);
  }
  const n = pixels.length;
  const hist = new Uint32Array(256);
  for (let i = 0; i < n; i++) hist[pixels[i]!]!++;

  let sum = 0;
  let sumSq = 0;
  let min = 255;
  let max = 0;
  let entropy = 0;
  for (let v = 0; v < 256; v++) {
    const c = hist[v]!;
    if (c === 0) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += c * v;
    sumSq += c * v * v;
    const p = c / n;
    entropy -= p * Math.log2(p);
  }
  const mean = sum / n;
  const variance = Math.max(0, sumSq / n - mean * mean);
  const clipLow = hist[0]! + hist[1]! + hist[2]!;
  const clipHigh = hist[253]! + hist[254]! + hist[255]!;

  let lapSum = 0;
  let lapSumSq = 0;
  let edges = 0;
  let interior = 0;
  for (let y = 1; y < height - 1; y++) {
    const row = y * width;
    for (let x = 1; x < width - 1; x++) {
      const i = row + x;
      const left = pixels[i - 1]!;
      const right = pixels[i + 1]!;
      const up = pixels[i - width]!;
      const down = pixels[i + width]!;
      const lap = left + right + up + down - 4 * pixels[i]!;
      lapSum += lap;
      lapSumSq += lap * lap;
      if (Math.abs(right - left) + Math.abs(down - up) > EDGE_THRESHOLD) edges++;
      interior++;
    }
  }
  const lapMean = interior ? lapSum / interior : 0;
  return {
    mean,
    std: Math.sqrt(variance),
    min,
    max,
    p01: percentile(hist, n, 0.01),
    p99: percentile(hist, n, 0.99),
    entropy: entropy === 0 ? 0 : entropy,
    clipLowFrac: clipLow / n,
    clipHighFrac: clipHigh / n,
    laplacianVariance: interior ? Math.max(0, lapSumSq / interior - lapMean * lapMean) : 0,
    edgeDensity: interior ? edges / interior : 0,
  };
}
