import type { Logger } from 'pino';
import type { EventBus } from '../../core/events/index.js';
import { TOPICS } from '../../core/events/index.js';
import { BatchWriter, type DurableWriter } from '../../core/db/batch-writer.js';
import type { PredictionRecord, PredictionStore } from '../store/prediction-store.js';

export interface RecorderOptions {
  /** Flush this long after the first buffered record (default 50 ms). */
  flushDelayMs?: number;
  /** Flush at once when this many records are buffered (default 100). */
  maxBuffered?: number;
}

/**
 * Writes prediction records by group commit (BatchWriter): buffered, written in batches of up to
 * `maxBuffered`, serialised, retried when the store fails. The service app's request barrier
 * holds a /predict answer until its record is stored (register `writer` with the platform's
 * Durability); `flush()` runs on close. Each write publishes `prediction.recorded` with the ids.
 */
export class PredictionRecorder {
  readonly #store: PredictionStore;
  readonly #events: EventBus | null;
  readonly #writer: BatchWriter<PredictionRecord>;

  constructor(store: PredictionStore, deps: { events?: EventBus; logger?: Logger } = {}, options: RecorderOptions = {}) {
    this.#store = store;
    this.#events = deps.events ?? null;
    this.#writer = new BatchWriter((batch) => this.#writeBatch(batch), {
      delayMs: options.flushDelayMs ?? 50,
      maxBatch: options.maxBuffered ?? 100,
      logger: deps.logger,
      what: 'prediction records',
    });
  }

  /** The group-commit writer (for the request barrier). */
  get writer(): DurableWriter {
    return this.#writer;
  }

  /** Records waiting to be written. */
  get pending(): number {
    return this.#writer.pending;
  }

  /** Buffers a record; never throws, never waits. */
  record(record: PredictionRecord): void {
    this.#writer.add(record);
  }

  /** Writes everything buffered so far (serialised; safe to call concurrently). */
  flush(): Promise<void> {
    return this.#writer.durable();
  }

  async #writeBatch(batch: PredictionRecord[]): Promise<void> {
    await this.#store.insertMany(batch);
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
