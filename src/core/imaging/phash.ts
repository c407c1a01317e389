/**
 * Perceptual hashing (DCT pHash) for near-duplicate detection: the same radiograph re-encoded,
 * resized or slightly re-exposed keeps (almost) the same 64-bit hash; different images differ in
 * about half of the bits.
 *
 * Algorithm (as in the `imagehash` Python package's `phash`): greyscale, resize to 32×32, 2-D
 * DCT-II, keep the 8×8 lowest frequencies, set a bit where the coefficient exceeds their median.
 */
import sharp from 'sharp';
import { AppError } from '../errors.js';
import { openImage, toDecodeError } from './decode.js';
import type { DecodeOptions } from './decode.js';

const N = 32;
const K = 8;

/** COS[u][x] = cos((2x + 1) u π / 2N) for u < K. */
const COS: Float64Array[] = Array.from({ length: K }, (_, u) =>
  Float64Array.from({ length: N }, (_, x) => Math.cos(((2 * x + 1) * u * Math.PI) / (2 * N))),
);

/**
 * pHash of a 32×32 8-bit grey image (1024 bytes, row-major) as 16 lowercase hex characters.
 * @throws AppError INVALID_INPUT when `pixels` is not 1024 bytes.
 */
export function phashFrom32x32(pixels: Uint8Array): string {
  if (pixels.length !== N * N) throw new AppError('INVALID_INPUT', `phash needs ${N * N} pixels, got ${pixels.length}`);
  // Rows first: R[y][u] = Σx p[y][x] COS[u][x]; then columns: D[v][u] = Σy COS[v][y] R[y][u].
  const rows = new Float64Array(N * K);
  for (let y = 0; y < N; y++) {
    for (let u = 0; u < K; u++) {
      const c = COS[u]!;
      let s = 0;
      for (let x = 0; x < N; x++) s += pixels[y * N + x]! * c[x]!;
      rows[y * K + u] = s;
    }
  }
  const coeffs = new Float64Array(K * K);
  for (let v = 0; v < K; v++) {
    const c = COS[v]!;
    for (let u = 0; u < K; u++) {
      let s = 0;
      for (let y = 0; y < N; y++) s += c[y]! * rows[y * K + u]!;
      coeffs[v * K + u] = s;
    }
  }
  const sorted = Float64Array.from(coeffs).sort();
  const median = (sorted[31]! + sorted[32]!) / 2;
  let hex = '';
  for (let nibble = 0; nibble < 16; nibble++) {
    let value = 0;
    for (let b = 0; b < 4; b++) value = (value << 1) | (coeffs[nibble * 4 + b]! > median ? 1 : 0);
    hex += value.toString(16);
  }
  return hex;
}

/**
 * pHash of a PNG, JPEG or DICOM image.
 * @throws AppError as `openImage` (INVALID_INPUT, UNSUPPORTED_MEDIA_TYPE, UNPROCESSABLE, PAYLOAD_TOO_LARGE).
 */
export async function perceptualHash(buf: Uint8Array, decode?: DecodeOptions): Promise<string> {
  const opened = await openImage(buf, decode);
  let data: Buffer;
  try {
    data = await opened.pipeline
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .resize(N, N, { fit: 'fill', kernel: 'cubic' })
      .toColourspace('b-w')
      .raw({ depth: 'uchar' })
      .toBuffer();
  } catch (err) {
    throw toDecodeError(opened.format, err);
  }
  return phashFrom32x32(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** pHash of already-decoded 8-bit grey pixels (e.g. `preprocess` output). */
export async function perceptualHashOfPixels(pixels: Uint8Array, width: number, height: number): Promise<string> {
  if (pixels.length !== width * height || width < 1 || height < 1) {
    throw new AppError('INVALID_INPUT', `${pixels.length} pixels do not make a ${width}x${height} image`);
  }
  const data = await sharp(pixels, { raw: { width, height, channels: 1 } })
    .resize(N, N, { fit: 'fill', kernel: 'cubic' })
    .toColourspace('b-w')
    .raw({ depth: 'uchar' })
    .toBuffer();
  return phashFrom32x32(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

const HASH_RE = /^[0-9a-f]{16}$/i;
const POPCOUNT = [0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4];

/**
 * Number of differing bits between two 16-hex-character hashes (0..64).
 * @throws AppError INVALID_INPUT for malformed hashes.
 */
export function hammingDistance(a: string, b: string): number {
  if (!HASH_RE.test(a) || !HASH_RE.test(b)) throw new AppError('INVALID_INPUT', 'Perceptual hashes must be 16 hex characters');
  let d = 0;
  for (let i = 0; i < 16; i++) d += POPCOUNT[parseInt(a[i]!, 16) ^ parseInt(b[i]!, 16)]!;
  return d;
}
