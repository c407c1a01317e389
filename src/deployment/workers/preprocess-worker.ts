/**
 * Piscina worker: decodes and preprocesses one image off the main thread with the SAME
 * `preprocess` the data pipeline uses (no train/serve skew), then builds the model input and the
 * image statistics for monitoring. Errors come back as values: class and code of an AppError do
 * not survive the thread boundary.
 */
import { isAppError } from '../../core/errors.js';
// Direct module imports (not the imaging index) keep each worker thread's footprint small.
import { preprocess, toModelInput, type PreprocessSpec } from '../../core/imaging/preprocess.js';
import { imageStats, type ImageStats } from '../../core/imaging/stats.js';
import type { ImageFormat } from '../../core/imaging/decode.js';

export interface PreprocessTask {
  bytes: Uint8Array;
  spec: PreprocessSpec;
}

export type PreprocessTaskResult =
  | {
      ok: true;
      /** size·size greyscale bytes. */
      pixels: Uint8Array;
      /** pixels / 255 as float32, NCHW [1, 1, size, size]. */
      input: Float32Array;
      source: { format: ImageFormat; width: number; height: number };
      stats: ImageStats;
      /** Milliseconds spent decoding + resizing (one libvips pipeline) in the worker. */
      preprocessMs: number;
    }
  | { ok: false; code: string; message: string };

export default async function run(task: PreprocessTask): Promise<PreprocessTaskResult> {
  const started = performance.now();
  try {
    const bytes = task.bytes instanceof Uint8Array ? task.bytes : new Uint8Array(task.bytes);
    const result = await preprocess(bytes, task.spec);
    const size = task.spec.size;
    return {
      ok: true,
      pixels: result.pixels,
      input: toModelInput(result.pixels, size),
      source: result.source,
      stats: imageStats(result.pixels, size, size),
      preprocessMs: performance.now() - started,
    };
  } catch (err) {
    if (isAppError(err)) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'UNPROCESSABLE', message: `could not read the image: ${err instanceof Error ? err.message : String(err)}` };
  }
}
