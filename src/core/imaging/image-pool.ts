import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { AppError, ERROR_STATUS, type ErrorCode } from '../errors.js';
import type { ImageAnalysis } from './analyse.js';
import type { AnonymisedDicom, ImageTask, ImageTaskResult, PreprocessedImage } from './image-worker.js';
import type { PreprocessSpec } from './preprocess-spec.js';

export type { AnonymisedDicom, PreprocessedImage } from './image-worker.js';

export interface ImagePoolOptions {
  /** Worker threads (default: the machine's cores). */
  threads?: number;
  /** Tasks allowed to wait for a thread; beyond it a call throws QUEUE_FULL. Default 512. */
  maxQueue?: number;
  /** Wall-time limit of one task once it runs, in ms (default 20 s): UNPROCESSABLE above it. */
  timeoutMs?: number;
  /** Heap limit of each worker thread in MiB (default 1024): UNPROCESSABLE above it. */
  memoryMb?: number;
}

const WORKER = new URL('./image-worker.ts', import.meta.url);
const WORKER_JS = new URL('./image-worker.js', import.meta.url);

/** Worker threads need the TypeScript loader the main thread runs under (tsx in development). */
function workerExecArgv(): string[] {
  const argv = process.execArgv;
  return argv.some((a) => a.includes('tsx')) ? argv : [...argv, '--import', 'tsx'];
}

function errorCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/**
 * The worker pool where untrusted image bytes are parsed and decoded, so that no file — however
 * malformed — can stall a service's event loop. Each thread has a heap cap (`resourceLimits`);
 * each task a wall-time limit counted from when it starts running. A task over either limit is
 * refused with UNPROCESSABLE naming the limit, and its thread is terminated and replaced.
 * Tasks wait in this class's own bounded queue, so piscina only ever holds running tasks and the
 * timer never counts queueing.
 */
export class ImagePool {
  readonly #pool: Piscina;
  readonly #threads: number;
  readonly #maxQueue: number;
  readonly #timeoutMs: number;
  readonly #memoryMb: number;
  readonly #waiting: (() => void)[] = [];
  #running = 0;
  #closed = false;

  constructor(options: ImagePoolOptions = {}) {
    this.#threads = Math.max(1, options.threads || availableParallelism());
    this.#maxQueue = options.maxQueue ?? 512;
    this.#timeoutMs = options.timeoutMs ?? 20_000;
    this.#memoryMb = options.memoryMb ?? 1024;
    const compiled = import.meta.url.endsWith('.js');
    this.#pool = new Piscina({
      filename: (compiled ? WORKER_JS : WORKER).href,
      minThreads: this.#threads,
      maxThreads: this.#threads,
      idleTimeout: 60_000,
      resourceLimits: { maxOldGenerationSizeMb: this.#memoryMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(16, this.#memoryMb >> 4)), stackSizeMb: 4 },
      ...(compiled ? {} : { execArgv: workerExecArgv() }),
    });
    // A thread that dies (limits) is replaced by piscina; its error reaches the task, not here.
    this.#pool.on('error', () => {});
  }

  get threads(): number {
    return this.#threads;
  }

  /** Tasks waiting for a worker thread. */
  get queueSize(): number {
    return this.#waiting.length;
  }

  /**
   * Decodes and preprocesses one image with `spec` (+ the PNG of the result when `png`; without
   * the float32 `input` when `tensor: false` — four times the pixels' bytes to copy between
   * threads, for a caller that hands the pixels to the inference thread as they are).
   * @throws AppError as `preprocess` would (INVALID_INPUT, UNSUPPORTED_MEDIA_TYPE, UNPROCESSABLE,
   *   PAYLOAD_TOO_LARGE), UNPROCESSABLE over a limit, QUEUE_FULL when the queue is full.
   */
  run(bytes: Uint8Array, spec: PreprocessSpec, options: { png?: boolean; tensor: false }): Promise<Omit<PreprocessedImage, 'input'>>;
  run(bytes: Uint8Array, spec: PreprocessSpec, options?: { png?: boolean; tensor?: true }): Promise<PreprocessedImage>;
  run(bytes: Uint8Array, spec: PreprocessSpec, options: { png?: boolean; tensor?: boolean } = {}): Promise<Omit<PreprocessedImage, 'input'>> {
    return this.#submit<PreprocessedImage>({ kind: 'preprocess', bytes, spec, png: options.png === true, tensor: options.tensor !== false });
  }

  /**
   * Checks a DICOM file with the decoder's rules, then de-identifies it (see `anonymiseDicom`).
   * `keepOriginal` also returns the sender's patient/study context (in memory only: auto-predict).
   */
  anonymise(bytes: Uint8Array, salt: string, options: { keepOriginal?: boolean } = {}): Promise<AnonymisedDicom> {
    return this.#submit<AnonymisedDicom>({ kind: 'anonymise', bytes, salt, keepOriginal: options.keepOriginal === true });
  }

  /** Ingest's full decode, statistics, pHash and quality gates (see `analyseImage`). */
  analyse(bytes: Uint8Array): Promise<ImageAnalysis> {
    return this.#submit<ImageAnalysis>({ kind: 'analyse', bytes });
  }

  async #submit<T>(given: ImageTask): Promise<T> {
    if (this.#closed) throw new AppError('SERVICE_UNAVAILABLE', 'the service is shutting down');
    // The bytes move to the worker in a buffer of their own: cloning a view clones its whole
    // backing store (a request body is often a slice of a larger socket buffer), and the caller
    // keeps its own bytes.
    const task = { ...given, bytes: new Uint8Array(given.bytes) };
    if (this.#running >= this.#threads) {
      if (this.#waiting.length >= this.#maxQueue) {
        throw new AppError('QUEUE_FULL', 'the image decoding queue is full; retry shortly', { retryAfter: 1 });
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
      if (this.#closed) throw new AppError('SERVICE_UNAVAILABLE', 'the service is shutting down');
    }
    this.#running++;
    let result: ImageTaskResult<T>;
    try {
      result = (await this.#pool.run(task, { signal: AbortSignal.timeout(this.#timeoutMs), transferList: [task.bytes.buffer as ArrayBuffer] })) as ImageTaskResult<T>;
    } catch (err) {
      throw this.#failure(err);
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
    if (!result.ok) {
      const code = (result.code in ERROR_STATUS ? result.code : 'UNPROCESSABLE') as ErrorCode;
      throw new AppError(code, result.message, result.details);
    }
    return result.value;
  }

  #failure(err: unknown): AppError {
    const name = err instanceof Error ? err.name : '';
    const code = errorCode(err);
    if (name === 'AbortError' || code === 'ABORT_ERR') {
      if (this.#closed) return new AppError('SERVICE_UNAVAILABLE', 'the service is shutting down');
      return new AppError('UNPROCESSABLE', `the image could not be decoded within the ${this.#timeoutMs} ms limit (XRAY_DECODE_TIMEOUT_MS); the file was refused`);
    }
    if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
      return new AppError('UNPROCESSABLE', `decoding the image needed more than the ${this.#memoryMb} MiB limit (XRAY_DECODE_MEMORY_MB); the file was refused`);
    }
    const message = err instanceof Error ? err.message : String(err);
    return new AppError('INTERNAL', `image worker failed: ${message}`);
  }

  /**
   * Starts every worker thread and runs one tiny image through it, so the first requests do not
   * pay for loading the imaging modules. Never throws.
   */
  async warmUp(): Promise<void> {
    try {
      const png = await sharp(Buffer.alloc(64 * 64, 128), { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
      const spec = { size: 16, mode: 'letterbox' as const, pad: 0, format: 'png' as const };
      await Promise.all(Array.from({ length: this.#threads }, () => this.run(png, spec).catch(() => {})));
    } catch {
      // warming is best effort
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const wake of this.#waiting.splice(0)) wake();
    await this.#pool.destroy();
  }
}

/** The pool of a platform-like owner, created on first use and closed with it. */
const shared = new WeakMap<object, ImagePool>();

/**
 * One image pool per platform, shared by every service in the process (embedded mode runs all
 * five in one), so decoding threads are never oversubscribed; closed when the platform closes.
 */
export function sharedImagePool(owner: { readonly config: { readonly decode: { threads: number; timeoutMs: number; memoryMb: number } }; onClose(fn: () => Promise<void> | void): void }): ImagePool {
  let pool = shared.get(owner);
  if (!pool) {
    const { threads, timeoutMs, memoryMb } = owner.config.decode;
    const created = new ImagePool({ threads: threads || undefined, timeoutMs, memoryMb });
    shared.set(owner, created);
    owner.onClose(() => created.close());
    pool = created;
  }
  return pool;
}
