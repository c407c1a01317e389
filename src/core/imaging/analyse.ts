/**
 * What ingest learns about an image before it is stored: the whole image is decoded (catching
 * truncation and corruption), measured at the size the default model sees, perceptually hashed
 * and run through the quality gates. Pure imaging; runs in the image worker pool.
 */
import { AppError } from '../errors.js';
import { probeImage, requireFormat, type ImageFormat } from './decode.js';
import { readDicomHeader } from './dicom.js';
import { perceptualHashOfPixels } from './phash.js';
import { preprocess } from './preprocess.js';
import { checkQuality } from './quality.js';
import { imageStats, type ImageStats } from './stats.js';

/**
 * The picture quality is judged on: every image is first brought to this size the way the default
 * model sees it (the thresholds of `checkQuality` were calibrated on it), and hashed from it.
 */
export const ANALYSIS_SPEC = Object.freeze({ size: 224, mode: 'letterbox' as const });

export interface ImageAnalysis {
  format: ImageFormat;
  width: number;
  height: number;
  bitDepth: number;
  photometric: string | null;
  modality: string | null;
  stats: ImageStats;
  phash: string;
  qualityFlags: string[];
}

/**
 * Decodes, measures and checks one image. Quality errors (too small, colour content, blank) throw;
 * warnings (low contrast, clipping, small) come back as flags.
 * @throws AppError as `probeImage`, or UNPROCESSABLE with `details.quality` for failed gates.
 */
export async function analyseImage(bytes: Uint8Array): Promise<ImageAnalysis> {
  const format = requireFormat(bytes);
  const info = await probeImage(bytes);
  const pre = await preprocess(bytes, ANALYSIS_SPEC);
  const stats = imageStats(pre.pixels, pre.width, pre.height);
  const issues = checkQuality(info, stats);
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) {
    throw new AppError('UNPROCESSABLE', `quality check failed: ${errors.map((e) => `${e.code}: ${e.message}`).join('; ')}`, { quality: issues });
  }
  const phash = await perceptualHashOfPixels(pre.pixels, pre.width, pre.height);
  const modality = format === 'dicom' ? readDicomHeader(bytes).modality : null;
  return {
    format,
    width: info.width,
    height: info.height,
    bitDepth: info.bitDepth,
    photometric: info.photometric ?? null,
    modality,
    stats,
    phash,
    qualityFlags: issues.map((i) => i.code),
  };
}
