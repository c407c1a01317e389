import type { Logger } from 'pino';
import type { EventBus } from '../../core/events/index.js';
import { TOPICS } from '../../core/events/index.js';
import type { PredictionRecord, PredictionStore } from '../store/prediction-store.js';

export interface RecorderOptions {
  /** Flush this long after the first buffered record (default 50 ms). */
  flushDelayMs?: number;
  /** Flush at once when this many records are buffered (default 100). */
  maxBuffered?: number;
  /** Records kept in memory at most while the store fails; older ones are dropped (default 50000). */
  maxPending?: number;
}

/**
 * Writes prediction records off the request path: buffered, flushed in batches every
 * `flushDelayMs` or `maxBuffered` records, serialised, retried on the next flush when the store
 * fails. `flush()` runs on close so nothing buffered is lost on a clean shutdown. Each flush
 * publishes `prediction.recorded` with the ids written.
 */
export class PredictionRecorder {
  readonly #store: PredictionStore;
  readonly #events: EventBus | null;
  readonly #logger: Logger | null;
  readonly #flushDelayMs: number;
  readonly #maxBuffered: number;
  readonly #maxPending: number;
  #pending: PredictionRecord[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #dropped = 0;
  #flushQueued = false;

  constructor(store: PredictionStore, deps: { events?: EventBus; logger?: Logger } = {}, options: RecorderOptions = {}) {
    this.#store = store;
    this.#events = deps.events ?? null;
    this.#logger = deps.logger ?? null;
    this.#flushDelayMs = options.flushDelayMs ?? 50;
    this.#maxBuffered = options.maxBuffered ?? 100;
    this.#maxPending = options.maxPending ?? 50_000;
  }

  /** Records waiting to be written. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Records dropped because the store failed for too long. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Buffers a record; never throws, never waits. */
  record(record: PredictionRecord): void {
    this.#pending.push(record);
    if (this.#pending.length > this.#maxPending) {
      const excess = this.#pending.length - this.#maxPending;
      this.#pending.splice(0, excess);
      this.#dropped += excess;
    }
    if (this.#pending.length >= this.#maxBuffered) {
      if (this.#flushQueued) return;
      this.#flushQueued = true;
      void this.flush().catch(() => {});
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        void this.flush().catch(() => {});
      }, this.#flushDelayMs);
      this.#timer.unref?.();
    }
  }

  /** Writes everything buffered so far (serialised; safe to call concurrently). */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#flushing = this.#flushing.catch(() => {}).then(() => this.#write());
    return this.#flushing;
  }

  async #write(): Promise<void> {
    this.#flushQueued = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    try {
      await this.#store.insertMany(batch);
    } catch (err) {
      this.#pending = batch.concat(this.#pending);
      this.#logger?.error({ err, records: batch.length }, 'writing prediction records failed; will retry');
      if (!this.#timer) {
        this.#timer = setTimeout(() => {
          this.#timer = null;
          void this.flush().catch(() => {});
        }, Math.max(this.#flushDelayMs, 1000));
        this.#timer.unref?.();
      }
      throw err;
    }
    if (this.#events) {
      const served = batch.filter((r) => !r.shadow);
      void this.#events
        .publish(TOPICS.predictionRecorded, {
          count: batch.length,
          ids: batch.map((r) => r.id),
          models: [...new Set(served.map((r) => `${r.modelName}@${r.modelVersion}`))],
          since: batch[0]!.time,
          until: batch[batch.length - 1]!.time,
        })
        .catch(() => {});
    }
  }
}
