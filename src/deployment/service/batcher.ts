import { AppError } from '../../core/errors.js';

/** Triton's dynamic-batching knobs, per model. */
export interface BatchingOptions {
  /** Largest batch handed to the model (1 = batching off). */
  maxBatchSize: number;
  /** Longest a request waits for companions before its batch runs anyway. */
  maxQueueDelayMs: number;
  /** Requests allowed to wait; one more is refused with QUEUE_FULL (503 + Retry-After). */
  maxQueueSize: number;
}

/**
 * Defaults. On CPU the batch cap is small: EfficientNet-class models gain no images/s from big
 * batches on a few cores (ORT: ~175 img/s at batch 1 vs ~169 at 16 on 2 threads; on a cache-starved
 * shared box batch 8 ran 2.5x slower per image than batch 1–4), while ORT's arena keeps memory for
 * the largest batch seen (+~20 MB per image at 224², so batch 16 alone costs ~350 MB). For the same
 * reason the CPU delay is 0: an idle engine runs what is queued at once (requests arriving during a
 * batch still form the next one) instead of idling up to the delay for images still being decoded.
 * GPUs do gain from batching, hence {@link GPU_BATCHING} there.
 */
export const DEFAULT_BATCHING: Readonly<BatchingOptions> = Object.freeze({ maxBatchSize: 4, maxQueueDelayMs: 0, maxQueueSize: 128 });
export const GPU_BATCHING: Readonly<Pick<BatchingOptions, 'maxBatchSize' | 'maxQueueDelayMs'>> = Object.freeze({ maxBatchSize: 16, maxQueueDelayMs: 2 });

/** What one request gets back from its batch. */
export interface BatchResult<O> {
  output: O;
  /** Milliseconds between submit and the start of its batch. */
  queueMs: number;
  /** Milliseconds the whole batch took in the model. */
  inferenceMs: number;
  batchSize: number;
}

export interface BatcherHooks {
  onBatch?(size: number, inferenceMs: number): void;
  onDepth?(depth: number): void;
}

const CONSUME = Symbol('consume');

/** A place held in a batcher's queue for a request still being preprocessed. */
export interface Reservation {
  /** Gives the place back (idempotent; a no-op once submitted). */
  cancel(): void;
  /** @internal */
  [CONSUME](): boolean;
}

interface Pending<I, O> {
  input: I;
  enqueuedAt: number;
  resolve(r: BatchResult<O>): void;
  reject(err: unknown): void;
}

/**
 * Dynamic batching for one model: concurrent requests are queued and run together.
 *
 * A batch runs when it is full, when its oldest request has waited `maxQueueDelayMs`, or — so a
 * lone client pays no delay — when no request that announced itself with {@link reserve} is still
 * on its way (e.g. being decoded). One batch runs at a time; requests arriving meanwhile form the
 * next one. The queue is bounded: beyond `maxQueueSize` waiting requests, {@link submit} throws
 * QUEUE_FULL instead of growing.
 */
export class DynamicBatcher<I, O> {
  readonly #run: (inputs: I[]) => Promise<O[]>;
  readonly #options: BatchingOptions;
  readonly #hooks: BatcherHooks;
  #queue: Pending<I, O>[] = [];
  #running = false;
  #timer: NodeJS.Timeout | null = null;
  #incoming = 0;
  #idle: (() => void)[] = [];
  #batches = 0;
  #items = 0;

  constructor(run: (inputs: I[]) => Promise<O[]>, options: BatchingOptions, hooks: BatcherHooks = {}) {
    checkBatching(options);
    this.#run = run;
    this.#options = Object.freeze({ ...options });
    this.#hooks = hooks;
  }

  get options(): BatchingOptions {
    return this.#options;
  }

  /** Batches run and images in them since creation. */
  get stats(): { batches: number; items: number; meanBatchSize: number } {
    return { batches: this.#batches, items: this.#items, meanBatchSize: this.#batches ? this.#items / this.#batches : 0 };
  }

  /** Requests waiting for a batch. */
  get depth(): number {
    return this.#queue.length;
  }

  /**
   * Announces a request that will {@link submit} soon (it is being preprocessed), so a batch
   * waits for it (up to the delay) instead of leaving without it. Pass the reservation to
   * `submit`, or `cancel()` it when the request will not come after all.
   * @throws AppError QUEUE_FULL (details.retryAfter seconds) when the queue is already full.
   */
  reserve(): Reservation {
    this.#checkRoom();
    this.#incoming++;
    let open = true;
    const close = (): boolean => {
      if (!open) return false;
      open = false;
      this.#incoming--;
      return true;
    };
    return {
      cancel: () => {
        if (close()) this.#maybeDispatch();
      },
      [CONSUME]: close,
    };
  }

  /**
   * Queues one input; resolves with its output when its batch has run.
   * @throws AppError QUEUE_FULL (details.retryAfter seconds) when the queue is full and the input
   *   holds no reservation.
   */
  submit(input: I, reservation?: Reservation): Promise<BatchResult<O>> {
    // A reserved slot turns into a queued one without a moment where neither counts.
    if (!reservation?.[CONSUME]()) this.#checkRoom();
    return new Promise<BatchResult<O>>((resolve, reject) => {
      this.#queue.push({ input, enqueuedAt: performance.now(), resolve, reject });
      this.#hooks.onDepth?.(this.#queue.length);
      this.#maybeDispatch();
    });
  }

  /** Resolves when nothing is queued or running. */
  drain(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #checkRoom(): void {
    if (this.#queue.length + this.#incoming >= this.#options.maxQueueSize) {
      throw new AppError('QUEUE_FULL', `the model's request queue is full (${this.#options.maxQueueSize} waiting); retry shortly`, {
        retryAfter: 1,
      });
    }
  }

  #maybeDispatch(): void {
    if (this.#running || this.#queue.length === 0) return;
    const full = this.#queue.length >= this.#options.maxBatchSize;
    const waited = performance.now() - this.#queue[0]!.enqueuedAt;
    if (full || this.#incoming <= 0 || waited >= this.#options.maxQueueDelayMs) {
      this.#dispatch();
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      this.#maybeDispatch();
    }, Math.max(0, this.#options.maxQueueDelayMs - waited));
  }

  #dispatch(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const batch = this.#queue.splice(0, this.#options.maxBatchSize);
    this.#hooks.onDepth?.(this.#queue.length);
    this.#running = true;
    const started = performance.now();
    void this.#run(batch.map((p) => p.input))
      .then(
        (outputs) => {
          const inferenceMs = performance.now() - started;
          this.#batches++;
          this.#items += batch.length;
          this.#hooks.onBatch?.(batch.length, inferenceMs);
          if (outputs.length !== batch.length) throw new AppError('INTERNAL', `model returned ${outputs.length} results for ${batch.length} inputs`);
          batch.forEach((p, i) => p.resolve({ output: outputs[i]!, queueMs: started - p.enqueuedAt, inferenceMs, batchSize: batch.length }));
        },
      )
      .catch((err: unknown) => {
        for (const p of batch) p.reject(err);
      })
      .finally(() => {
        this.#running = false;
        if (this.#queue.length > 0) this.#maybeDispatch();
        else for (const resolve of this.#idle.splice(0)) resolve();
      });
  }
}

/** @throws AppError INVALID_INPUT when a knob is out of range. */
export function checkBatching(o: BatchingOptions): void {
  if (!Number.isInteger(o.maxBatchSize) || o.maxBatchSize < 1 || o.maxBatchSize > 1024) {
    throw new AppError('INVALID_INPUT', `max_batch_size must be an integer in 1..1024, got ${o.maxBatchSize}`);
  }
  if (!(o.maxQueueDelayMs >= 0 && o.maxQueueDelayMs <= 10_000)) {
    throw new AppError('INVALID_INPUT', `max_queue_delay_ms must be in 0..10000, got ${o.maxQueueDelayMs}`);
  }
  if (!Number.isInteger(o.maxQueueSize) || o.maxQueueSize < 1 || o.maxQueueSize > 100_000) {
    throw new AppError('INVALID_INPUT', `max_queue_size must be an integer in 1..100000, got ${o.maxQueueSize}`);
  }
}
