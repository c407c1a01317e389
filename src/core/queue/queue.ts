export type JobState = 'waiting' | 'active' | 'completed' | 'failed';

export interface QueueJob<T = unknown> {
  readonly id: string;
  readonly name: string;
  readonly data: T;
  /** 1 on the first run. */
  readonly attempt: number;
  updateProgress(progress: unknown): Promise<void>;
}

export interface JobRecord<T = unknown> {
  id: string;
  queue: string;
  name: string;
  data: T;
  state: JobState;
  attempts: number;
  progress: unknown;
  result: unknown;
  error: string | null;
  /** When a job waiting after a failed attempt is due again (ms since the epoch); null when due now or not known. */
  retryAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export type JobHandler<T = unknown> = (job: QueueJob<T>) => Promise<unknown>;

export interface AddOptions {
  /** Idempotency: adding an existing id returns it without a second job. */
  jobId?: string;
  /** Runs at most this many times (default 1: failures are not retried). */
  attempts?: number;
  /**
   * Base delay before a retry, in ms: retry n waits `backoffMs · 2^(n−1)` (BullMQ's exponential
   * backoff). Default 0: retried at once.
   */
  backoffMs?: number;
}

/** Thrown by a handler to fail its job now: no retry, whatever attempts remain. */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError';
}

/**
 * Durable job queue. Jobs survive a restart: the local queue keeps them in the relational store,
 * BullMQ in Redis. A job that was active when the process died is retried while attempts remain,
 * else marked failed with error 'interrupted'.
 */
export interface JobQueue {
  readonly kind: 'local' | 'bullmq';
  add<T>(queue: string, name: string, data: T, options?: AddOptions): Promise<string>;
  /** Starts consuming a queue (once per queue per process). */
  process<T>(queue: string, handler: JobHandler<T>, options?: { concurrency?: number }): Promise<void>;
  get<T = unknown>(queue: string, id: string): Promise<JobRecord<T> | null>;
  counts(queue: string): Promise<Record<JobState, number>>;
  ping(): Promise<boolean>;
  /** Stops taking jobs and waits for active handlers to settle. */
  close(): Promise<void>;
}
