/**
 * Deterministic synthetic frontal (PA) chest radiographs for tests, demos and drift experiments.
 *
 * Not medical images: a procedural picture with the parts a small CNN and a human eye key on —
 * dark lung fields inside a brighter trunk, mediastinum and heart, trachea, spine, posterior
 * ribs, clavicles, hilar vessels, quantum noise — and, for PNEUMONIA, patchy opacities inside the
 * lung fields (lobar consolidation for "bacteria", bilateral perihilar patches for "virus").
 * Everything derives from seeds through a small PRNG, so the same options give the same bytes.
 *
 * Anatomy is drawn in a unit square (x right, y down, body midline at x = 0.5) and stretched to
 * the output size; the image's left is the patient's right, as on a PA film.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { AppError } from '../errors.js';

export type PneumoniaKind = 'bacteria' | 'virus';

export interface ChestXrayOptions {
  /** Seed for this image: pose, exposure jitter and noise. */
  seed: number | string;
  /** Seed for the patient: anatomy and disease pattern. Defaults to `seed`. Images of one patient share it. */
  patientSeed?: number | string;
  /** Square side in pixels when width/height are not given. Default 256. */
  size?: number;
  width?: number;
  height?: number;
  /** Add opacities inside the lungs. Default false. */
  pneumonia?: boolean;
  /** Pattern of the opacities; default picked from the patient seed. */
  pneumoniaKind?: PneumoniaKind;
  /** Output encoding. Default 'png'. */
  format?: 'png' | 'jpeg';
  /** JPEG quality 1–100. Default 90. */
  quality?: number;
  /** Write a negative (bone dark), as a mislabelled MONOCHROME1 export would look. Default false. */
  invert?: boolean;
  /** Brightness shift in stops: +1 doubles every grey level (clipping at white), −1 halves it. Default 0. */
  exposure?: number;
  /** Scale of the quantum noise; 0 disables it. Default 1. */
  noise?: number;
}

export interface RenderedImage {
  width: number;
  height: number;
  /** Row-major 8-bit greyscale. */
  pixels: Uint8Array;
}

// ---------------------------------------------------------------- randomness

/** FNV-1a of the seed's string form: numbers and strings both work as seeds. */
function seedToInt(seed: number | string): number {
  const s = `${typeof seed}:${seed}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Small seeded PRNG (mulberry32) with helpers. */
class Rng {
  #state: number;
  #spare: number | null = null;

  constructor(seed: number | string, stream = '') {
    this.#state = seedToInt(`${seed}/${stream}`);
  }

  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  normal(): number {
    if (this.#spare !== null) {
      const s = this.#spare;
      this.#spare = null;
      return s;
    }
    const u = Math.max(this.next(), 1e-12);
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

// ---------------------------------------------------------------- helpers

const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);

function smoothstep(e0: number, e1: number, x: number): number {
  const t = clamp01((x - e0) / (e1 - e0));
  return t * t * (3 - 2 * t);
}

/** A square texture over the unit square, sampled bilinearly. */
class Texture {
  readonly n: number;
  readonly data: Float32Array;

  constructor(n: number) {
    this.n = n;
    this.data = new Float32Array(n * n);
  }

  sample(x: number, y: number): number {
    const n = this.n;
    const fx = clamp01(x) * (n - 1);
    const fy = clamp01(y) * (n - 1);
    const x0 = Math.floor(fx);
    const y0 = Math.floor(fy);
    const x1 = Math.min(n - 1, x0 + 1);
    const y1 = Math.min(n - 1, y0 + 1);
    const tx = fx - x0;
    const ty = fy - y0;
    const d = this.data;
    const a = d[y0 * n + x0]! * (1 - tx) + d[y0 * n + x1]! * tx;
    const b = d[y1 * n + x0]! * (1 - tx) + d[y1 * n + x1]! * tx;
    return a * (1 - ty) + b * ty;
  }

  /** Adds a soft line segment (Gaussian cross-section of half-width `w`). */
  addSegment(x0: number, y0: number, x1: number, y1: number, w: number, amount: number): void {
    const n = this.n;
    const pad = 3 * w;
    const ix0 = Math.max(0, Math.floor((Math.min(x0, x1) - pad) * (n - 1)));
    const ix1 = Math.min(n - 1, Math.ceil((Math.max(x0, x1) + pad) * (n - 1)));
    const iy0 = Math.max(0, Math.floor((Math.min(y0, y1) - pad) * (n - 1)));
    const iy1 = Math.min(n - 1, Math.ceil((Math.max(y0, y1) + pad) * (n - 1)));
    const dx = x1 - x0;
    const dy = y1 - y0;
    const len2 = dx * dx + dy * dy || 1e-12;
    for (let iy = iy0; iy <= iy1; iy++) {
      const y = iy / (n - 1);
      for (let ix = ix0; ix <= ix1; ix++) {
        const x = ix / (n - 1);
        const t = clamp01(((x - x0) * dx + (y - y0) * dy) / len2);
        const ex = x - (x0 + t * dx);
        const ey = y - (y0 + t * dy);
        const d2 = (ex * ex + ey * ey) / (w * w);
        if (d2 < 9) this.data[iy * n + ix]! += amount * Math.exp(-d2);
      }
    }
  }

  /** Adds a soft blob (Gaussian of radius `r`). */
  addBlob(cx: number, cy: number, r: number, amount: number): void {
    const n = this.n;
    const pad = 2.5 * r;
    const ix0 = Math.max(0, Math.floor((cx - pad) * (n - 1)));
    const ix1 = Math.min(n - 1, Math.ceil((cx + pad) * (n - 1)));
    const iy0 = Math.max(0, Math.floor((cy - pad) * (n - 1)));
    const iy1 = Math.min(n - 1, Math.ceil((cy + pad) * (n - 1)));
    for (let iy = iy0; iy <= iy1; iy++) {
      const y = iy / (n - 1);
      for (let ix = ix0; ix <= ix1; ix++) {
        const x = ix / (n - 1);
        const d2 = ((x - cx) ** 2 + (y - cy) ** 2) / (r * r);
        if (d2 < 6.25) this.data[iy * n + ix]! += amount * Math.exp(-d2);
      }
    }
  }
}

/** Smooth value noise (sum of octaves), roughly in [-1, 1]. */
function valueNoise(rng: Rng, n: number, octaves: number[]): Texture {
  const out = new Texture(n);
  let norm = 0;
  octaves.forEach((cells, o) => {
    const amp = 1 / (o + 1);
    norm += amp;
    const lattice = Float32Array.from({ length: (cells + 1) * (cells + 1) }, () => rng.range(-1, 1));
    for (let iy = 0; iy < n; iy++) {
      const fy = (iy / (n - 1)) * cells;
      const y0 = Math.min(cells - 1, Math.floor(fy));
      const ty = smoothstep(0, 1, fy - y0);
      for (let ix = 0; ix < n; ix++) {
        const fx = (ix / (n - 1)) * cells;
        const x0 = Math.min(cells - 1, Math.floor(fx));
        const tx = smoothstep(0, 1, fx - x0);
        const a = lattice[y0 * (cells + 1) + x0]! * (1 - tx) + lattice[y0 * (cells + 1) + x0 + 1]! * tx;
        const b = lattice[(y0 + 1) * (cells + 1) + x0]! * (1 - tx) + lattice[(y0 + 1) * (cells + 1) + x0 + 1]! * tx;
        out.data[iy * n + ix]! += amp * (a * (1 - ty) + b * ty);
      }
    }
  });
  for (let i = 0; i < out.data.length; i++) out.data[i]! /= norm;
  return out;
}

// ---------------------------------------------------------------- anatomy

interface Lung {
  side: -1 | 1;
  centre: number; // lateral distance of the lung's axis from the midline
  halfWidth: number;
  top: number;
  bottom: number;
  dome: number;
}

interface Anatomy {
  bodyHalfWidth: number;
  neckHalfWidth: number;
  shoulderY: number;
  lungs: [Lung, Lung];
  lungDarkness: number;
  heart: { x: number; y: number; rx: number; ry: number };
  mediastinumHalfWidth: number;
  aorta: { x: number; y: number; r: number };
  ribTop: number;
  ribSpacing: number;
  ribCount: number;
  ribHalfThickness: number;
  clavicle: { innerY: number; outerX: number; outerY: number };
  softTissue: number;
  boneGain: number;
  vessels: Texture;
  mottle: Texture;
  lungTexture: Texture;
}

function makeAnatomy(rng: Rng): Anatomy {
  const top = rng.range(0.12, 0.17);
  const bottom = rng.range(0.72, 0.8);
  const lungHalf = rng.range(0.13, 0.16);
  const lungCentre = rng.range(0.17, 0.2);
  const lungs: [Lung, Lung] = [
    // Image left = patient's right: the right hemidiaphragm sits a little higher.
    { side: -1, centre: lungCentre, halfWidth: lungHalf, top, bottom: bottom - rng.range(0.01, 0.035), dome: rng.range(0.05, 0.08) },
    { side: 1, centre: lungCentre + rng.range(-0.01, 0.01), halfWidth: lungHalf * rng.range(0.94, 1.02), top: top + rng.range(0, 0.01), bottom, dome: rng.range(0.05, 0.08) },
  ];
  const vessels = new Texture(192);
  for (const side of [-1, 1] as const) {
    const hx = 0.5 + side * rng.range(0.08, 0.1);
    const hy = rng.range(0.42, 0.47);
    vessels.addBlob(hx, hy, 0.035, 0.05); // hilum
    const branches = rng.int(12, 16);
    for (let b = 0; b < branches; b++) {
      // Fan from up-lateral to down-lateral, starting around (not at) the hilum.
      let a = rng.range(-1.4, 1.7);
      const len = rng.range(0.14, 0.28);
      let x = hx + side * rng.range(0, 0.02);
      let y = hy + rng.range(-0.03, 0.03);
      let w = rng.range(0.004, 0.006);
      const steps = 6;
      for (let s = 0; s < steps; s++) {
        const nx = x + side * Math.cos(a) * (len / steps);
        const ny = y + Math.sin(a) * (len / steps);
        vessels.addSegment(x, y, nx, ny, w, 0.035 * (1 - s / (steps + 2)));
        if (rng.next() < 0.4) {
          const ba = a + rng.range(-0.8, 0.8);
          vessels.addSegment(nx, ny, nx + side * Math.cos(ba) * len * 0.25, ny + Math.sin(ba) * len * 0.25, w * 0.6, 0.018);
        }
        x = nx;
        y = ny;
        w *= 0.85;
        a += rng.range(-0.3, 0.3);
      }
    }
  }
  return {
    bodyHalfWidth: rng.range(0.37, 0.42),
    neckHalfWidth: rng.range(0.08, 0.1),
    shoulderY: rng.range(0.06, 0.09),
    lungs,
    lungDarkness: rng.range(0.3, 0.38),
    heart: { x: 0.5 + rng.range(0.04, 0.07), y: rng.range(0.65, 0.69), rx: rng.range(0.14, 0.17), ry: rng.range(0.11, 0.14) },
    mediastinumHalfWidth: rng.range(0.045, 0.06),
    aorta: { x: 0.5 + rng.range(0.05, 0.06), y: rng.range(0.33, 0.36), r: rng.range(0.024, 0.03) },
    ribTop: top - rng.range(0.0, 0.02),
    ribSpacing: (bottom - top) / rng.range(7.5, 8.5),
    ribCount: 10,
    ribHalfThickness: rng.range(0.007, 0.009),
    clavicle: { innerY: rng.range(0.17, 0.2), outerX: rng.range(0.28, 0.32), outerY: rng.range(0.08, 0.11) },
    softTissue: rng.range(0.44, 0.52),
    boneGain: rng.range(0.07, 0.09),
    vessels,
    mottle: valueNoise(rng, 96, [4, 9, 19]),
    lungTexture: valueNoise(rng, 128, [12, 25, 50]),
  };
}

/** Signed "insideness" of a lung in unit-square units, > 0 inside. */
function lungInside(l: Lung, x: number, y: number): number {
  const lateral = l.side * (x - 0.5);
  const q = (lateral - l.centre) / l.halfWidth; // -1 medial edge .. +1 lateral edge
  const r = (y - l.top) / (l.bottom - l.top);
  const widthAt = Math.sqrt(clamp01(r / 0.35)) * (1 - 0.08 * Math.max(0, q)); // rounded apex
  const side = (widthAt - Math.abs(q)) * l.halfWidth;
  const topIn = y - l.top;
  const floor = l.bottom - l.dome * Math.cos(clamp01((q + 1) / 2) * Math.PI * 0.5 + Math.PI * 0.25) * 1.4;
  const bottomIn = floor - y;
  return Math.min(side, topIn, bottomIn);
}

function makePneumonia(rng: Rng, a: Anatomy, kind: PneumoniaKind): Texture {
  const tex = new Texture(160);
  const patch = valueNoise(rng, 160, [6, 13, 27]);
  const pickPoint = (lung: Lung, yLo: number, yHi: number): [number, number] => {
    const y = lung.top + (lung.bottom - lung.top) * rng.range(yLo, yHi);
    const x = 0.5 + lung.side * (lung.centre + lung.halfWidth * rng.range(-0.5, 0.6));
    return [x, y];
  };
  if (kind === 'bacteria') {
    const patches = rng.next() < 0.3 ? 2 : 1;
    for (let p = 0; p < patches; p++) {
      const lung = a.lungs[rng.int(0, 1)]!;
      const [cx, cy] = pickPoint(lung, 0.35, 0.85);
      const r = rng.range(0.06, 0.1);
      const strength = rng.range(0.26, 0.36);
      for (let k = 0; k < 6; k++) {
        tex.addBlob(cx + rng.normal() * r * 0.45, cy + rng.normal() * r * 0.45, r * rng.range(0.5, 0.85), strength * rng.range(0.5, 0.8));
      }
    }
  } else {
    const blobs = rng.int(8, 14);
    for (let b = 0; b < blobs; b++) {
      const lung = a.lungs[b % 2]!;
      const [cx, cy] = pickPoint(lung, 0.25, 0.9);
      // Pull towards the hilum: viral patterns are perihilar.
      const hx = 0.5 + lung.side * 0.1;
      tex.addBlob(cx * 0.7 + hx * 0.3, cy, rng.range(0.03, 0.06), rng.range(0.12, 0.2));
    }
  }
  for (let i = 0; i < tex.data.length; i++) {
    const mod = 0.55 + 0.45 * patch.data[i]! * 1.6;
    tex.data[i] = Math.min(0.4, tex.data[i]! * clamp01(mod));
  }
  return tex;
}

/**
 * Renders a synthetic chest radiograph to raw 8-bit greyscale (no encoding).
 * @throws AppError INVALID_INPUT for sizes outside 32..4096.
 */
export function renderChestXray(options: ChestXrayOptions): RenderedImage {
  const width = options.width ?? options.size ?? 256;
  const height = options.height ?? options.size ?? 256;
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v < 32 || v > 4096) throw new AppError('INVALID_INPUT', `Synthetic ${name} must be an integer in 32..4096, got ${v}`);
  }
  const exposure = options.exposure ?? 0;
  const noiseScale = options.noise ?? 1;
  if (!Number.isFinite(exposure) || !Number.isFinite(noiseScale) || noiseScale < 0) {
    throw new AppError('INVALID_INPUT', 'exposure must be finite and noise ≥ 0');
  }
  const patientSeed = options.patientSeed ?? options.seed;
  const anatomy = makeAnatomy(new Rng(patientSeed, 'anatomy'));
  const kindRng = new Rng(patientSeed, 'pneumonia');
  const kind: PneumoniaKind = options.pneumoniaKind ?? (kindRng.next() < 0.6 ? 'bacteria' : 'virus');
  const opacity = options.pneumonia ? makePneumonia(kindRng, anatomy, kind) : null;

  const img = new Rng(options.seed, 'image');
  const angle = img.normal() * 0.03;
  const scale = img.range(0.96, 1.04);
  const shiftX = img.range(-0.02, 0.02);
  const shiftY = img.range(-0.02, 0.02);
  const gain = 2 ** (exposure + img.normal() * 0.05);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const a = anatomy;
  const edge = 0.012;

  const pixels = new Uint8Array(width * height);
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      // Pixel → anatomy coordinates (inverse pose).
      const u = (px + 0.5) / width - 0.5 - shiftX;
      const v = (py + 0.5) / height - 0.5 - shiftY;
      const x = (cos * u + sin * v) / scale + 0.5;
      const y = (-sin * u + cos * v) / scale + 0.5;
      const dx = x - 0.5;
      const adx = Math.abs(dx);

      // Trunk with neck and shoulders.
      const shoulder = smoothstep(a.shoulderY - 0.07, a.shoulderY + 0.1, y);
      // Shoulders flare beyond the chest wall, then the trunk narrows a little at the axillae.
      const flare = 0.07 * smoothstep(0.35, 0.15, y);
      const halfWidth = a.neckHalfWidth + (a.bodyHalfWidth + flare - a.neckHalfWidth) * Math.sqrt(shoulder) - 0.03 * (y - 0.55) ** 2;
      const body = smoothstep(edge, -edge, adx - halfWidth) * smoothstep(-0.05, 0.0, y);
      const thickness = Math.sqrt(clamp01(1 - (adx / (halfWidth + 1e-6)) ** 2));
      let d = 0.03 + body * (a.softTissue * (0.55 + 0.45 * thickness));
      if (y < 0.25) {
        // Humeral heads at the shoulders.
        const humerus = smoothstep(1.15, 0.8, Math.hypot(adx - (a.bodyHalfWidth + 0.035), (y - 0.1) * 1.1) / 0.05);
        d += a.boneGain * 1.1 * humerus * body;
      }

      // Mediastinum, heart, aortic knob.
      const medW = a.mediastinumHalfWidth + 0.02 * smoothstep(0.35, 0.6, y);
      const mediastinum = smoothstep(edge, -edge, adx - medW) * smoothstep(0.02, 0.08, y);
      const h = a.heart;
      // The lower half is stretched so the heart merges into the diaphragm.
      const heartR = Math.sqrt(((x - h.x) / h.rx) ** 2 + ((y - h.y) / (y > h.y ? h.ry * 1.7 : h.ry)) ** 2);
      const heart = smoothstep(1.1, 0.85, heartR) * smoothstep(h.x - h.rx * 1.2, h.x - h.rx * 0.4, x + 0.35 * (h.y - y));
      const ao = a.aorta;
      const aorta = smoothstep(1.15, 0.8, Math.hypot(x - ao.x, (y - ao.y) / 1.5) / ao.r);
      d += 0.025 * Math.max(heart, aorta, mediastinum) * body;

      // Lungs (cut by mediastinum and heart), with vessels.
      let lung = 0;
      for (const l of a.lungs) lung = Math.max(lung, smoothstep(-1.6 * edge, 1.6 * edge, lungInside(l, x, y)));
      lung *= (1 - Math.max(mediastinum, heart * 0.95, aorta)) * body;
      // Darker laterally and towards the apices; brighter over the bases (overlapping soft tissue).
      const lungShade = 0.8 + 0.12 * smoothstep(0.08, 0.3, adx) + 0.08 * smoothstep(0.65, 0.3, y);
      d -= lung * a.lungDarkness * lungShade * (1 + 0.12 * a.lungTexture.sample(x, y));
      d += lung * a.vessels.sample(x, y);
      if (opacity) d += lung * opacity.sample(x, y);

      // Trachea (air column) and spine.
      d -= 0.07 * smoothstep(0.02, 0.012, adx) * smoothstep(0.36, 0.3, y) * body;
      const spine = smoothstep(0.034, 0.024, adx) * body;
      if (spine > 0) {
        const vertebra = 0.85 + 0.15 * Math.cos((2 * Math.PI * (y - a.ribTop)) / (a.ribSpacing * 0.8));
        d += a.boneGain * 0.6 * spine * vertebra * (0.5 + 0.5 * mediastinum);
      }

      // Posterior ribs: arcs from the spine, rising slightly then curving down laterally.
      const t = (adx - 0.03) / a.bodyHalfWidth;
      if (t > -0.05 && t < 1.02 && body > 0) {
        let rib = 0;
        for (let k = 0; k < a.ribCount; k++) {
          const tc = clamp01(t);
          const y0 = a.ribTop + k * a.ribSpacing * (1 + 0.05 * k);
          const yc = y0 - 0.045 * Math.sin(Math.PI * 0.75 * tc) + 0.2 * tc * tc;
          const th = a.ribHalfThickness * (1 + 0.5 * tc);
          const off = Math.abs(y - yc) / th;
          // Cortical rims a little brighter than the medulla.
          if (off < 1.6) rib = Math.max(rib, smoothstep(1.3, 0.8, off) * (0.7 + 0.3 * smoothstep(0.4, 0.95, off)));
          // Anterior rib: fainter, running down and medially from the lateral wall.
          if (k > 0 && k < 7 && tc > 0.3) {
            const ya = y0 + 0.07 + 0.11 * (1 - tc) ** 1.2;
            const offA = Math.abs(y - ya) / (th * 1.3);
            if (offA < 1.4) rib = Math.max(rib, 0.4 * smoothstep(1.2, 0.6, offA) * smoothstep(0.3, 0.5, tc));
          }
        }
        d += a.boneGain * rib * smoothstep(0.97, 0.8, t) * (0.3 + 0.7 * lung) * (1 - 0.7 * mediastinum);
      }

      // Clavicles.
      if (y < 0.25 && adx < a.clavicle.outerX + 0.04) {
        const c = a.clavicle;
        const s = clamp01((adx - 0.04) / (c.outerX - 0.04));
        const yc = c.innerY + (c.outerY - c.innerY) * s - 0.015 * Math.sin(Math.PI * s);
        const off = Math.abs(y - yc) / 0.011;
        d += a.boneGain * 1.2 * smoothstep(1.3, 0.6, off) * smoothstep(0.02, 0.05, adx) * smoothstep(c.outerX + 0.03, c.outerX - 0.01, adx);
      }

      // Soft exposure non-uniformity and quantum noise.
      d *= 1 + 0.05 * a.mottle.sample(x, y);
      d += noiseScale * 0.012 * img.normal();

      let g = clamp01(d * 1.3) ** 0.95 * gain;
      g = clamp01(g);
      const byte = Math.round(g * 255);
      pixels[py * width + px] = options.invert ? 255 - byte : byte;
    }
  }
  return { width, height, pixels };
}

/**
 * Renders and encodes a synthetic chest radiograph as a greyscale PNG or JPEG.
 * Same options → same bytes.
 * @example
 * const png = await generateChestXray({ seed: 7, pneumonia: true });
 */
export async function generateChestXray(options: ChestXrayOptions): Promise<Buffer> {
  const { width, height, pixels } = renderChestXray(options);
  const pipeline = sharp(pixels, { raw: { width, height, channels: 1 } }).blur(Math.max(0.4, Math.min(width, height) / 640)).toColourspace('b-w');
  if ((options.format ?? 'png') === 'jpeg') {
    const quality = options.quality ?? 90;
    if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new AppError('INVALID_INPUT', `JPEG quality must be 1..100, got ${quality}`);
    return pipeline.jpeg({ quality, chromaSubsampling: '4:4:4' }).toBuffer();
  }
  return pipeline.png({ compressionLevel: 6 }).toBuffer();
}

// ---------------------------------------------------------------- datasets

export type SyntheticLabel = 'NORMAL' | 'PNEUMONIA';

export interface GenerateDatasetOptions {
  /** Images per class. */
  perClass: number;
  seed: number | string;
  /** Square side in pixels. Default 256. */
  size?: number;
  /** Folder layout and file naming; only the Kermany layout exists. Default 'kermany'. */
  layout?: 'kermany';
  /** Default 'jpeg' (as in the Kermany set). */
  format?: 'png' | 'jpeg';
  quality?: number;
  /** Images per patient are drawn uniformly from this range. Default [1, 4]. */
  imagesPerPatient?: [number, number];
  /** Passed to every image, e.g. to build a drifted set. */
  exposure?: number;
}

export interface SyntheticFile {
  /** Path relative to the dataset folder, with `/` separators: `NORMAL/IM-0001-0001.jpeg`. */
  path: string;
  label: SyntheticLabel;
  /** Patient id as it appears in the name (`IM-0001`, `person12`). */
  patientId: string;
  /** Pneumonia pattern, null for NORMAL. */
  kind: PneumoniaKind | null;
}

export interface SyntheticDataset {
  dir: string;
  files: SyntheticFile[];
}

/**
 * Writes a labelled dataset in the Kermany layout: `<dir>/NORMAL/IM-0001-0001.jpeg`,
 * `IM-0001-0001-0001.jpeg` (more images of patient 0001), and
 * `<dir>/PNEUMONIA/person12_bacteria_48.jpeg` / `person13_virus_49.jpeg` (last number: running
 * image counter). Several images per patient share anatomy, so splits must be by patient.
 * @returns the files written, in order.
 * @throws AppError INVALID_INPUT for bad options.
 */
export async function generateDataset(dir: string, options: GenerateDatasetOptions): Promise<SyntheticDataset> {
  const { perClass, seed } = options;
  if (!Number.isInteger(perClass) || perClass < 1 || perClass > 100_000) throw new AppError('INVALID_INPUT', `perClass must be a positive integer, got ${perClass}`);
  if ((options.layout ?? 'kermany') !== 'kermany') throw new AppError('INVALID_INPUT', `Unknown layout ${options.layout}`);
  const [minPer, maxPer] = options.imagesPerPatient ?? [1, 4];
  if (!Number.isInteger(minPer) || !Number.isInteger(maxPer) || minPer < 1 || maxPer < minPer) throw new AppError('INVALID_INPUT', 'imagesPerPatient must be [min, max] with 1 ≤ min ≤ max');
  const format = options.format ?? 'jpeg';
  const ext = format === 'jpeg' ? 'jpeg' : 'png';
  const rng = new Rng(seed, 'dataset');
  const files: SyntheticFile[] = [];
  await mkdir(join(dir, 'NORMAL'), { recursive: true });
  await mkdir(join(dir, 'PNEUMONIA'), { recursive: true });

  let counter = rng.int(1, 50);
  for (const label of ['NORMAL', 'PNEUMONIA'] as const) {
    let written = 0;
    let patientNo = label === 'NORMAL' ? rng.int(1, 100) : rng.int(1, 20);
    while (written < perClass) {
      const count = Math.min(perClass - written, rng.int(minPer, maxPer));
      const patientSeed = `${seed}/${label}/${patientNo}`;
      const kind: PneumoniaKind | null = label === 'PNEUMONIA' ? (new Rng(patientSeed, 'kind').next() < 0.6 ? 'bacteria' : 'virus') : null;
      const patientId = label === 'NORMAL' ? `IM-${String(patientNo).padStart(4, '0')}` : `person${patientNo}`;
      for (let k = 0; k < count; k++) {
        const name = label === 'NORMAL'
          ? `${patientId}-0001${k === 0 ? '' : `-${String(k).padStart(4, '0')}`}.${ext}`
          : `${patientId}_${kind}_${counter++}.${ext}`;
        const buf = await generateChestXray({
          seed: `${patientSeed}/${k}`,
          patientSeed,
          size: options.size ?? 256,
          pneumonia: label === 'PNEUMONIA',
          ...(kind ? { pneumoniaKind: kind } : {}),
          format,
          ...(options.quality !== undefined ? { quality: options.quality } : {}),
          ...(options.exposure !== undefined ? { exposure: options.exposure } : {}),
        });
        await writeFile(join(dir, label, name), buf);
        files.push({ path: `${label}/${name}`, label, patientId, kind });
        written++;
      }
      patientNo += rng.int(1, 3);
    }
  }
  return { dir, files };
}
