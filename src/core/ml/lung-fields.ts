/**
 * Where a saliency map puts its mass relative to the lung fields, to make shortcut cues visible
 * (a CAM on a side marker, the neck or the abdomen instead of the lungs).
 *
 * The lung fields come from a fixed atlas, not a segmentation model: the mean of a training split's
 * preprocessed images, thresholded (Otsu) inside a geometric thorax prior — two generous ellipses
 * where the lungs of a frontal chest radiograph lie. On a frontal radiograph the aerated lungs are
 * the darkest tissue inside the thorax, so the dark class of the mean image there is where lungs
 * usually are. It is a population proxy: a rotated, shallow-inspiration or off-centre image has its
 * lungs elsewhere, and mass at the atlas boundary is uncertain.
 */
import { invalidInput } from '../errors.js';
import { upsampleBilinear, type Grid } from './cam.js';
import { quantileSorted } from './stats.js';

/** Side of the atlas grid (images and maps are resampled to it). */
export const ATLAS_SIDE = 64;

/** The thorax prior: ellipses in unit image coordinates (x right, y down), one per lung. */
export const THORAX_PRIOR = [
  { cx: 0.29, cy: 0.44, rx: 0.2, ry: 0.34 },
  { cx: 0.71, cy: 0.44, rx: 0.2, ry: 0.34 },
] as const;

export interface LungAtlas {
  side: number;
  /** side·side, 1 inside the lung fields. */
  mask: Uint8Array;
  /** Fraction of the image the lung fields cover: the share of mass a uniform map puts inside. */
  coverage: number;
  /** Training images averaged. */
  images: number;
  /** Otsu threshold on the mean image (0–255). */
  threshold: number;
  /** Rows and columns the lung fields span (end exclusive). */
  bbox: { x0: number; y0: number; x1: number; y1: number };
}

/** Shares of a map's mass (sum 1): in the lung fields, above them (neck, shoulders), below (abdomen), between (mediastinum, heart), lateral (image edges: markers, outside the body). */
export interface LungFieldMass {
  inside: number;
  above: number;
  below: number;
  between: number;
  lateral: number;
}

function inPrior(x: number, y: number, side: number): boolean {
  const u = (x + 0.5) / side;
  const v = (y + 0.5) / side;
  return THORAX_PRIOR.some((e) => ((u - e.cx) / e.rx) ** 2 + ((v - e.cy) / e.ry) ** 2 <= 1);
}

/** Area-averages a square greyscale image to side·side. */
export function resampleSquare(pixels: Uint8Array, size: number, side = ATLAS_SIDE): Float32Array {
  if (pixels.length !== size * size) throw invalidInput(`image has ${pixels.length} pixels, expected ${size}² = ${size * size}`);
  const out = new Float32Array(side * side);
  const count = new Float32Array(side * side);
  for (let y = 0; y < size; y++) {
    const oy = Math.min(side - 1, Math.floor((y * side) / size));
    for (let x = 0; x < size; x++) {
      const o = oy * side + Math.min(side - 1, Math.floor((x * side) / size));
      out[o] += pixels[y * size + x]!;
      count[o]++;
    }
  }
  if (size >= side) {
    for (let i = 0; i < out.length; i++) out[i] /= count[i] || 1;
    return out;
  }
  // Smaller than the atlas: sample bilinearly instead of leaving empty cells.
  return upsampleBilinear(Float32Array.from(pixels), size, size, side, side);
}

function otsu(values: number[]): number {
  const hist = new Float64Array(256);
  for (const v of values) hist[Math.min(255, Math.max(0, Math.round(v)))]++;
  const total = values.length;
  let sumAll = 0;
  for (let i = 0; i < 256; i++) sumAll += i * hist[i]!;
  let wB = 0;
  let sumB = 0;
  let best = 0;
  let threshold = 0;
  for (let t = 0; t < 256; t++) {
    wB += hist[t]!;
    if (wB === 0) continue;
    const wF = total - wB;
    if (wF === 0) break;
    sumB += t * hist[t]!;
    const mB = sumB / wB;
    const mF = (sumAll - sumB) / wF;
    const between = wB * wF * (mB - mF) ** 2;
    if (between > best) {
      best = between;
      threshold = t;
    }
  }
  return threshold;
}

/**
 * The largest 4-connected component whose centre is left of the midline and the largest right of
 * it: the two lungs, without the air beside the body that is as dark at the image's edges.
 */
function largestPerSide(dark: Uint8Array, side: number): Uint8Array {
  const label = new Int32Array(side * side).fill(-1);
  const best = [
    { size: 0, id: -1 },
    { size: 0, id: -1 },
  ];
  let next = 0;
  for (let start = 0; start < dark.length; start++) {
    if (!dark[start] || label[start] !== -1) continue;
    const id = next++;
    const stack = [start];
    label[start] = id;
    let size = 0;
    let sumX = 0;
    while (stack.length) {
      const p = stack.pop()!;
      const x = p % side;
      const y = (p - x) / side;
      size++;
      sumX += x;
      for (const [nx, ny] of [[x - 1, y], [x + 1, y], [x, y - 1], [x, y + 1]] as const) {
        if (nx < 0 || ny < 0 || nx >= side || ny >= side) continue;
        const q = ny * side + nx;
        if (dark[q] && label[q] === -1) {
          label[q] = id;
          stack.push(q);
        }
      }
    }
    const half = sumX / size + 0.5 < side / 2 ? 0 : 1;
    if (size > best[half]!.size) best[half] = { size, id };
  }
  const keep = new Set(best.filter((b) => b.id >= 0).map((b) => b.id));
  return Uint8Array.from(label, (l) => (keep.has(l) ? 1 : 0));
}

/**
 * The lung-field atlas of a set of training images (each `size`·`size` greyscale bytes, as the
 * model's preprocessing makes them).
 * @throws AppError INVALID_INPUT without images, or when no lung field is found (a flat mean).
 */
export function buildLungAtlas(images: { pixels: Uint8Array; size: number }[], side = ATLAS_SIDE): LungAtlas {
  if (images.length === 0) throw invalidInput('the lung-field atlas needs training images');
  const mean = new Float32Array(side * side);
  for (const img of images) {
    const r = resampleSquare(img.pixels, img.size, side);
    for (let i = 0; i < mean.length; i++) mean[i] += r[i]! / images.length;
  }
  const prior: number[] = [];
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) if (inPrior(x, y, side)) prior.push(mean[y * side + x]!);
  const threshold = otsu(prior);
  const dark = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) if (inPrior(x, y, side) && mean[y * side + x]! <= threshold) dark[y * side + x] = 1;
  const mask = largestPerSide(dark, side);
  let n = 0;
  const bbox = { x0: side, y0: side, x1: 0, y1: 0 };
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      if (!mask[y * side + x]) continue;
      n++;
      bbox.x0 = Math.min(bbox.x0, x);
      bbox.y0 = Math.min(bbox.y0, y);
      bbox.x1 = Math.max(bbox.x1, x + 1);
      bbox.y1 = Math.max(bbox.y1, y + 1);
    }
  }
  if (n === 0 || n === prior.length) throw invalidInput('no lung field stands out in the mean training image (flat images?)');
  return { side, mask, coverage: n / (side * side), images: images.length, threshold, bbox };
}

/** How a map's mass (negative values count as 0) splits around the atlas's lung fields; null for a map with no mass. */
export function lungFieldMass(map: Grid, atlas: LungAtlas): LungFieldMass | null {
  const { side, mask, bbox } = atlas;
  const up = upsampleBilinear(map.grid, map.h, map.w, side, side);
  const acc = { inside: 0, above: 0, below: 0, between: 0, lateral: 0 };
  let total = 0;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const v = up[y * side + x]!;
      if (!(v > 0)) continue;
      total += v;
      if (mask[y * side + x]) acc.inside += v;
      else if (y < bbox.y0) acc.above += v;
      else if (y >= bbox.y1) acc.below += v;
      else if (x >= bbox.x0 && x < bbox.x1) acc.between += v;
      else acc.lateral += v;
    }
  }
  if (total <= 0) return null;
  return { inside: acc.inside / total, above: acc.above / total, below: acc.below / total, between: acc.between / total, lateral: acc.lateral / total };
}

export interface LungFieldSummary {
  /** Maps measured. */
  n: number;
  /** Maps with no mass (left out of the shares). */
  empty: number;
  mean_inside: number | null;
  median_inside: number | null;
  p10_inside: number | null;
  /** Share of maps with less than half their mass in the lung fields. */
  share_mostly_outside: number | null;
  /** Mean share of mass per region. */
  regions: LungFieldMass | null;
  by_label: Record<string, { n: number; mean_inside: number | null; share_mostly_outside: number | null }>;
}

function describe(masses: LungFieldMass[]): Pick<LungFieldSummary, 'mean_inside' | 'median_inside' | 'p10_inside' | 'share_mostly_outside' | 'regions'> {
  if (masses.length === 0) return { mean_inside: null, median_inside: null, p10_inside: null, share_mostly_outside: null, regions: null };
  const inside = masses.map((m) => m.inside).sort((a, b) => a - b);
  const avg = (k: keyof LungFieldMass) => masses.reduce((s, m) => s + m[k], 0) / masses.length;
  return {
    mean_inside: avg('inside'),
    median_inside: quantileSorted(inside, 0.5),
    p10_inside: quantileSorted(inside, 0.1),
    share_mostly_outside: inside.filter((v) => v < 0.5).length / inside.length,
    regions: { inside: avg('inside'), above: avg('above'), below: avg('below'), between: avg('between'), lateral: avg('lateral') },
  };
}

/** Summary over many maps, overall and per label. */
export function summarizeLungFieldMass(items: { label: string; mass: LungFieldMass | null }[]): LungFieldSummary {
  const withMass = items.filter((i): i is { label: string; mass: LungFieldMass } => i.mass !== null);
  const by_label: LungFieldSummary['by_label'] = {};
  for (const label of [...new Set(items.map((i) => i.label))].sort()) {
    const d = describe(withMass.filter((i) => i.label === label).map((i) => i.mass));
    by_label[label] = { n: items.filter((i) => i.label === label).length, mean_inside: d.mean_inside, share_mostly_outside: d.share_mostly_outside };
  }
  return { n: items.length, empty: items.length - withMass.length, ...describe(withMass.map((i) => i.mass)), by_label };
}
