import type { Queue, Worker, Job } from 'bullmq';
import { PermanentJobError, type AddOptions, type JobHandler, type JobQueue, type JobRecord, type JobState } from './queue.js';

type BullModule = typeof import('bullmq');

/**
 * BullMQ on Redis (scale path): several processes may add and consume. Jobs and their state
 * live in Redis, so a restart loses nothing; stalled jobs of a dead worker are retried by BullMQ.
 */
export class BullmqQueue implements JobQueue {
  readonly kind = 'bullmq' as const;
  readonly #url: string;
  readonly #prefix: string;
  readonly #queues = new Map<string, Queue>();
  readonly #workers: Worker[] = [];
  #bull?: BullModule;

  constructor(url: string, options: { prefix?: string } = {}) {
    this.#url = url;
    this.#prefix = options.prefix ?? 'xray';
  }

  #connection() {
    const u = new URL(this.#url);
    return {
      host: u.hostname,
      port: Number(u.port || 6379),
      db: Number(u.pathname.slice(1) || 0),
      username: u.username || undefined,
      password: u.password || undefined,
      tls: u.protocol === 'rediss:' ? {} : undefined,
      maxRetriesPerRequest: null,
    };
  }

  async #module(): Promise<BullModule> {
    this.#bull ??= await import('bullmq');
    return this.#bull;
  }

  async #queue(name: string): Promise<Queue> {
    let q = this.#queues.get(name);
    if (!q) {
      const { Queue } = await this.#module();
      q = new Queue(name, { connection: this.#connection(), prefix: this.#prefix });
      q.on('error', () => {});
      this.#queues.set(name, q);
    }
    return q;
  }

  async add<T>(queue: string, name: string, data: T, options: AddOptions = {}): Promise<string> {
    const q = await this.#queue(queue);
    const job = await q.add(name, data, {
      jobId: options.jobId,
      attempts: Math.max(1, options.attempts ?? 1),
      ...(options.backoffMs ? { backoff: { type: 'exponential', delay: options.backoffMs } } : {}),
      removeOnComplete: false,
      removeOnFail: false,
    });
    return job.id!;
  }

  async process<T>(queue: string, handler: JobHandler<T>, options: { concurrency?: number } = {}): Promise<void> {
    const { Worker, UnrecoverableError } = await this.#module();
    const worker = new Worker(
      queue,
      async (job: Job) => {
        try {
          return await handler({
            id: job.id!,
            name: job.name,
            data: job.data as T,
            attempt: job.attemptsMade + 1,
            updateProgress: async (p) => {
              await job.updateProgress(p as object);
            },
          });
        } catch (err) {
          // BullMQ's own marker for "do not retry".
          if (err instanceof PermanentJobError) throw new UnrecoverableError(err.message);
          throw err;
        }
      },
      { connection: this.#connection(), prefix: this.#prefix, concurrency: Math.max(1, options.concurrency ?? 1) },
    );
    worker.on('error', () => {});
    this.#workers.push(worker);
    await worker.waitUntilReady();
  }

  async get<T = unknown>(queue: string, id: string): Promise<JobRecord<T> | null> {
    const q = await this.#queue(queue);
    // State first: a job read before its state could be a finished job's pre-finish fields
    // (failed, with no reason and no attempt), since BullMQ finishes a job in one step between.
    const raw = await q.getJobState(id);
    const job = await q.getJob(id);
    if (!job || raw === 'unknown') return null;
    const state: JobState =
      raw === 'completed' ? 'completed' : raw === 'failed' ? 'failed' : raw === 'active' ? 'active' : 'waiting';
    return {
      id: job.id!,
      queue,
      name: job.name,
      data: job.data as T,
      state,
      attempts: job.attemptsMade,
      progress: job.progress ?? null,
      result: job.returnvalue ?? null,
      error: job.failedReason || null,
      // A backed-off retry waits in BullMQ's delayed set, whose due time the job does not carry.
      retryAt: null,
      createdAt: job.timestamp,
      updatedAt: job.finishedOn ?? job.processedOn ?? job.timestamp,
    };
  }

  async counts(queue: string): Promise<Record<JobState, number>> {
    const q = await this.#queue(queue);
    const c = await q.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed');
    return {
      waiting: (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
    };
  }

  async ping(): Promise<boolean> {
    try {
      const q = await this.#queue('__ping');
      const client = (await q.client) as unknown as { ping(): Promise<string> };
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /** Removes every queue's data under this prefix (tests). */
  async obliterate(queue: string): Promise<void> {
    const q = await this.#queue(queue);
    await q.obliterate({ force: true });
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.#workers.map((w) => w.close()));
    await Promise.allSettled([...this.#queues.values()].map((q) => q.close()));
    // close() can leave the shared ioredis connections open; make sure no socket keeps the process alive.
    await Promise.allSettled([...this.#workers, ...this.#queues.values()].map((x) => x.disconnect()));
    this.#workers.length = 0;
    this.#queues.clear();
  }
}
