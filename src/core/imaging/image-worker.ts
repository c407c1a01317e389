/**
 * Piscina worker: every parse and decode of untrusted image bytes runs here, never on a service's
 * event loop (the pool gives each thread a heap cap and each task a wall-time limit). Three tasks:
 * `preprocess` (serving, previews, exports: the SAME `preprocess` training uses), `anonymise`
 * (DICOM header checked with the decoder's rules first, then de-identified) and `analyse`
 * (ingest's full decode, statistics, pHash and quality gates). Errors come back as values: the
 * class of an AppError does not survive the thread boundary.
 */
import sharp from 'sharp';
import { isAppError } from '../errors.js';
// Direct module imports (not the imaging index) keep each worker thread's footprint small.
import { analyseImage, type ImageAnalysis } from './analyse.js';
import { anonymiseDicom, type DicomInstanceUids, type OriginalDicomContext } from './anonymise.js';
import { requireFormat, type ImageFormat } from './decode.js';
import { readDicomHeader } from './dicom.js';
import { preprocess, toModelInput, type PreprocessSpec } from './preprocess.js';
import { imageStats, type ImageStats } from './stats.js';

export type ImageTask =
  | { kind: 'preprocess'; bytes: Uint8Array; spec: PreprocessSpec; png?: boolean; tensor?: boolean }
  | { kind: 'anonymise'; bytes: Uint8Array; salt: string; keepOriginal?: boolean }
  | { kind: 'analyse'; bytes: Uint8Array };

export interface PreprocessedImage {
  /** size·size greyscale bytes. */
  pixels: Uint8Array;
  /** pixels / 255 as float32, NCHW [1, 1, size, size]. */
  input: Float32Array;
  source: { format: ImageFormat; width: number; height: number };
  stats: ImageStats;
  /** Lossless PNG of `pixels`, when asked for. */
  png?: Uint8Array;
  /** Milliseconds spent decoding + resizing (one libvips pipeline) in the worker. */
  preprocessMs: number;
}

export interface AnonymisedDicom {
  bytes: Uint8Array;
  patientHash: string | null;
  warnings: string[];
  /** Study/series/SOP identity after de-identification. */
  uids: DicomInstanceUids;
  /** The sender's patient/study context, only when asked (`keepOriginal`): memory only. */
  original?: OriginalDicomContext;
}

// libvips' operation cache never hits here (every upload is new bytes) but holds up to 50 MB.
sharp.cache(false);

export type TaskError = { ok: false; code: string; message: string; details?: unknown };
export type ImageTaskResult<T> = { ok: true; value: T } | TaskError;

async function preprocessTask(task: Extract<ImageTask, { kind: 'preprocess' }>): Promise<Omit<PreprocessedImage, 'input'>> {
  const started = performance.now();
  const result = await preprocess(task.bytes, task.spec, { png: task.png === true });
  const size = task.spec.size;
  return {
    pixels: result.pixels,
    ...(task.tensor !== false ? { input: toModelInput(result.pixels, size) } : {}),
    source: result.source,
    stats: imageStats(result.pixels, size, size),
    ...(result.png ? { png: result.png } : {}),
    preprocessMs: performance.now() - started,
  };
}

function anonymiseTask(task: Extract<ImageTask, { kind: 'anonymise' }>): AnonymisedDicom {
  // The decoder's parser and rules first: it refuses malformed files in milliseconds, where the
  // de-identifier's parser can spend minutes and gigabytes on them.
  readDicomHeader(task.bytes);
  const anon = anonymiseDicom(task.bytes, { salt: task.salt, keepOriginal: task.keepOriginal === true });
  return { bytes: anon.buffer, patientHash: anon.patientHash, warnings: anon.warnings, uids: anon.uids, ...(anon.original ? { original: anon.original } : {}) };
}

export default async function run(task: ImageTask): Promise<ImageTaskResult<Omit<PreprocessedImage, 'input'> | AnonymisedDicom | ImageAnalysis>> {
  try {
    const bytes = task.bytes instanceof Uint8Array ? task.bytes : new Uint8Array(task.bytes);
    const t = { ...task, bytes } as ImageTask;
    if (t.kind === 'preprocess') return { ok: true, value: await preprocessTask(t) };
    requireFormat(bytes);
    if (t.kind === 'anonymise') return { ok: true, value: anonymiseTask(t) };
    return { ok: true, value: await analyseImage(bytes) };
  } catch (err) {
    if (isAppError(err)) return { ok: false, code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) };
    return { ok: false, code: 'UNPROCESSABLE', message: `could not read the image: ${err instanceof Error ? err.message : String(err)}` };
  }
}
