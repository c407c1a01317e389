import sharp, { type Sharp } from 'sharp';
import { AppError } from '../errors.js';
import { Rng } from '../ml/random.js';
import { openImage } from './decode.js';

/**
 * Plausible acquisition shifts of an X-ray (another scanner, exposure, post-processing, file
 * handling), applied to the image *file* before the serving path sees it. Robustness evaluation
 * (`xray evaluate --shifts`) runs a labelled set once per shift to show how AUC and the operating
 * point move. Every shift is deterministic (noise is seeded), the output is a greyscale PNG (a
 * lossless carrier) except for the JPEG re-compression shifts.
 */
export interface ImageShift {
  name: string;
  description: string;
  apply(image: Uint8Array): Promise<Buffer>;
}

interface Grey {
  pixels: Uint8Array;
  width: number;
  height: number;
}

async function decodeGrey(image: Uint8Array): Promise<Grey> {
  const opened = await openImage(image);
  const { data, info } = await opened.pipeline.greyscale().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 1) throw new AppError('UNPROCESSABLE', `expected one grey channel after decoding, got ${info.channels}`);
  return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

const raw = (g: Grey) => sharp(g.pixels, { raw: { width: g.width, height: g.height, channels: 1 } });
const png = (s: Sharp) => s.toColourspace('b-w').png({ compressionLevel: 3 }).toBuffer();

/** A shift that recomputes every grey value: `prepare` sees the image once and returns the new value of a grey value. */
function perPixel(name: string, description: string, prepare: (g: Grey) => (v: number) => number): ImageShift {
  return {
    name,
    description,
    async apply(image) {
      const g = await decodeGrey(image);
      const f = prepare(g);
      const out = new Uint8Array(g.pixels.length);
      for (let i = 0; i < out.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(f(g.pixels[i]!))));
      return png(raw({ ...g, pixels: out }));
    },
  };
}

const pointwise = (name: string, description: string, f: (v: number) => number) => perPixel(name, description, () => f);

const contrast = (factor: number) =>
  perPixel(`contrast x${factor}`, `contrast scaled by ${factor} around the image's mean grey`, (g) => {
    const mean = g.pixels.reduce((a, v) => a + v, 0) / g.pixels.length;
    return (v) => (v - mean) * factor + mean;
  });

const noise = (sd: number) =>
  perPixel(`noise sd ${sd}`, `additive Gaussian noise, standard deviation ${sd} of the grey range (seeded per image size)`, (g) => {
    const rng = new Rng(`shift-noise:${g.width}x${g.height}`);
    return (v) => v + rng.normal(0, sd * 255);
  });

function geometric(name: string, description: string, op: (g: Grey) => Sharp): ImageShift {
  return { name, description, apply: async (image) => png(op(await decodeGrey(image))) };
}

function jpeg(quality: number): ImageShift {
  return {
    name: `JPEG q${quality}`,
    description: `re-compressed as a baseline JPEG at quality ${quality}`,
    apply: async (image) => raw(await decodeGrey(image)).jpeg({ quality, chromaSubsampling: '4:4:4' }).toBuffer(),
  };
}

const scaled = (g: Grey, sx: number, sy: number) =>
  raw(g).resize({ width: Math.max(8, Math.round(g.width * sx)), height: Math.max(8, Math.round(g.height * sy)), fit: 'fill', kernel: 'lanczos3' });

function centreCrop(fraction: number): ImageShift {
  return geometric(`crop ${Math.round(fraction * 100)}%`, `centre crop keeping ${Math.round(fraction * 100)}% of each side`, (g) => {
    const w = Math.max(8, Math.round(g.width * fraction));
    const h = Math.max(8, Math.round(g.height * fraction));
    return raw(g).extract({ left: Math.floor((g.width - w) / 2), top: Math.floor((g.height - h) / 2), width: w, height: h });
  });
}

/** The shifts of the robustness table, mild to strong, in table order. */
export const IMAGE_SHIFTS: readonly ImageShift[] = Object.freeze([
  pointwise('exposure -20%', 'every grey value x0.8 (under-exposed)', (v) => v * 0.8),
  pointwise('exposure +20%', 'every grey value x1.2 (over-exposed, clipped at white)', (v) => v * 1.2),
  contrast(0.7),
  contrast(1.3),
  pointwise('gamma 0.7', 'gamma 0.7 on the normalised grey value (brighter mid-tones)', (v) => 255 * (v / 255) ** 0.7),
  pointwise('gamma 1.4', 'gamma 1.4 on the normalised grey value (darker mid-tones)', (v) => 255 * (v / 255) ** 1.4),
  geometric('blur sigma 1.5px', 'Gaussian blur, sigma 1.5 source pixels', (g) => raw(g).blur(1.5)),
  noise(0.03),
  geometric('aspect 0.85', 'width x0.85 (a narrower file; serving letterboxes it)', (g) => scaled(g, 0.85, 1)),
  geometric('aspect 1.15', 'width x1.15 (a wider file; serving letterboxes it)', (g) => scaled(g, 1.15, 1)),
  geometric('low resolution 50%', 'down-sampled to half the side, then served as such', (g) => scaled(g, 0.5, 0.5)),
  centreCrop(0.9),
  centreCrop(0.8),
  jpeg(50),
  jpeg(20),
]);

/** The named shifts, in table order. @throws AppError INVALID_INPUT naming the unknown ones. */
export function findShifts(names: readonly string[]): ImageShift[] {
  if (names.length === 0) return [...IMAGE_SHIFTS];
  const unknown = names.filter((n) => !IMAGE_SHIFTS.some((s) => s.name === n));
  if (unknown.length) throw new AppError('INVALID_INPUT', `unknown shift(s) ${unknown.map((n) => `'${n}'`).join(', ')}; available: ${IMAGE_SHIFTS.map((s) => `'${s.name}'`).join(', ')}`);
  return IMAGE_SHIFTS.filter((s) => names.includes(s.name));
}
