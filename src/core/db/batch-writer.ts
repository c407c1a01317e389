import type { Logger } from 'pino';

export interface BatchWriterOptions {
  /** Write this long after the first queued item when nobody waits for it (default 20 ms). */
  delayMs?: number;
  /** Write at once when this many items are queued (default 200). */
  maxBatch?: number;
  /** After a failed write, retry in the background this long later (default 1000 ms). */
  retryMs?: number;
  logger?: Logger;
  /** For log messages ('audit records'). */
  what?: string;
}

/**
 * Group commit: items are queued and written in batches, one write at a time, in order. Nobody
 * waiting, a batch goes after `delayMs`; a caller that needs its item stored (`durable`) starts
 * the write at once, and items queued while a write is in flight ride the next one — so under
 * load many requests share one transaction and each waits a few milliseconds, not a timer.
 * A failed write keeps its items at the front of the queue and rejects the waiters.
 */
export class BatchWriter<T> {
  readonly #write: (items: T[]) => Promise<void>;
  readonly #opts: Required<Omit<BatchWriterOptions, 'logger'>> & { logger?: Logger };
  #pending: { item: T; ticket: number }[] = [];
  #queued = 0;
  #durable = 0;
  #flushing: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #flushQueued = false;

  constructor(write: (items: T[]) => Promise<void>, options: BatchWriterOptions = {}) {
    this.#write = write;
    this.#opts = { delayMs: 20, maxBatch: 200, retryMs: 1000, what: 'records', ...options };
  }

  /** Items queued so far (a ticket counter: the n-th item queued has ticket n). */
  get queued(): number {
    return this.#queued;
  }

  /** Items queued but not yet stored. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Queues an item; returns its ticket for `durable`. Never waits. */
  add(item: T): number {
    const ticket = ++this.#queued;
    this.#pending.push({ item, ticket });
    if (this.#pending.length >= this.#opts.maxBatch) this.#kick();
    else this.#schedule(this.#opts.delayMs);
    return ticket;
  }

  /**
   * Resolves once every item up to `ticket` (default: all queued so far) is stored; starts the
   * write now. Rejects when the write fails.
   */
  async durable(ticket = this.#queued): Promise<void> {
    while (this.#durable < ticket) await this.flush();
  }

  /** Writes everything queued so far (serialised; safe to call concurrently). */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#flushing = this.#flushing.catch(() => {}).then(() => this.#writeBatch());
    return this.#flushing;
  }

  #kick(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    void this.flush().catch(() => {});
  }

  #schedule(ms: number): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush().catch(() => {});
    }, ms);
    this.#timer.unref?.();
  }

  async #writeBatch(): Promise<void> {
    this.#flushQueued = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    try {
      await this.#write(batch.map((b) => b.item));
    } catch (err) {
      this.#pending = batch.concat(this.#pending);
      this.#opts.logger?.error({ err, count: batch.length }, `writing ${this.#opts.what} failed; will retry`);
      this.#schedule(this.#opts.retryMs);
      throw err;
    }
    this.#durable = batch[batch.length - 1]!.ticket;
  }
}

/** What the request barrier needs of a writer. */
export interface DurableWriter {
  readonly queued: number;
  durable(ticket?: number): Promise<void>;
}

/**
 * The barrier between "done" and "answered": a request notes how much was queued when it began
 * and, before its response goes out, waits until every writer has stored what was queued since
 * (its own audit and prediction records among them). A request that queued nothing, while nothing
 * else did either, passes straight through.
 */
export class Durability {
  readonly #writers = new Set<DurableWriter>();

  /** Adds a writer; the returned function removes it. */
  register(writer: DurableWriter): () => void {
    this.#writers.add(writer);
    return () => this.#writers.delete(writer);
  }

  /** The position to wait from (taken when a request starts). */
  mark(): number {
    let n = 0;
    for (const w of this.#writers) n += w.queued;
    return n;
  }

  /** Waits until everything queued since `mark` is stored; false when there was nothing to wait for. */
  async settle(mark: number): Promise<boolean> {
    if (this.mark() === mark) return false;
    await Promise.all([...this.#writers].map((w) => w.durable(w.queued)));
    return true;
  }
}
