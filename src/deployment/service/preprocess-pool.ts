import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { AppError, type ErrorCode, ERROR_STATUS } from '../../core/errors.js';
import type { PreprocessSpec } from '../../core/imaging/index.js';
import type { PreprocessTask, PreprocessTaskResult } from '../workers/preprocess-worker.js';

export type PreprocessOutput = Extract<PreprocessTaskResult, { ok: true }>;

export interface PreprocessPoolOptions {
  /** Worker threads (default: the machine's cores). */
  threads?: number;
  /** Tasks allowed to wait for a thread; beyond it run() throws QUEUE_FULL. Default 512. */
  maxQueue?: number;
}

const WORKER = new URL('../workers/preprocess-worker.ts', import.meta.url);

/** Worker threads need the TypeScript loader the main thread runs under. */
function workerExecArgv(): string[] {
  const argv = process.execArgv;
  return argv.some((a) => a.includes('tsx')) ? argv : [...argv, '--import', 'tsx'];
}

/**
 * Image decoding and preprocessing on a piscina worker pool sized to the cores, so the event loop
 * stays free for requests and batching while libvips works.
 */
export class PreprocessPool {
  readonly #pool: Piscina;
  #closed = false;

  constructor(options: PreprocessPoolOptions = {}) {
    const threads = Math.max(1, options.threads ?? availableParallelism());
    this.#pool = new Piscina({
      filename: WORKER.href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
      maxQueue: options.maxQueue ?? 512,
      execArgv: workerExecArgv(),
    });
  }

  get threads(): number {
    return this.#pool.threads.length;
  }

  /** Tasks waiting for a worker thread. */
  get queueSize(): number {
    return this.#pool.queueSize;
  }

  /**
   * Decodes and preprocesses one image with `spec`.
   * @throws AppError as `preprocess` would (INVALID_INPUT, UNSUPPORTED_MEDIA_TYPE, UNPROCESSABLE,
   *   PAYLOAD_TOO_LARGE), or QUEUE_FULL when the pool's queue is full.
   */
  async run(bytes: Uint8Array, spec: PreprocessSpec): Promise<PreprocessOutput> {
    if (this.#closed) throw new AppError('SERVICE_UNAVAILABLE', 'the service is shutting down');
    const task: PreprocessTask = { bytes, spec };
    let result: PreprocessTaskResult;
    try {
      result = (await this.#pool.run(task)) as PreprocessTaskResult;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/queue is at limit/i.test(message)) {
        throw new AppError('QUEUE_FULL', 'the image decoding queue is full; retry shortly', { retryAfter: 1 });
      }
      throw new AppError('INTERNAL', `image worker failed: ${message}`);
    }
    if (!result.ok) {
      const code = (result.code in ERROR_STATUS ? result.code : 'UNPROCESSABLE') as ErrorCode;
      throw new AppError(code, result.message);
    }
    return result;
  }

  /**
   * Starts every worker thread and runs one tiny image through it, so the first requests do not
   * pay for loading the imaging modules. Never throws.
   */
  async warmUp(): Promise<void> {
    try {
      const png = await sharp(Buffer.alloc(64 * 64, 128), { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
      const spec = { size: 16, mode: 'letterbox' as const, pad: 0, format: 'png' as const };
      await Promise.all(Array.from({ length: Math.max(1, this.#pool.options.maxThreads) }, () => this.run(png, spec).catch(() => {})));
    } catch {
      // warming is best effort
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.destroy();
  }
}
