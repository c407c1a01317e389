import { randomUUID } from 'node:crypto';
import type { Database } from '../db/index.js';
import { PermanentJobError, type AddOptions, type JobHandler, type JobQueue, type JobRecord, type JobState } from './queue.js';

interface Consumer {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- consumers of different job payload types share one registry
  handler: JobHandler<any>;
  concurrency: number;
  running: number;
}

/**
 * In-process queue whose jobs are rows in `queue_jobs` (SQLite or PostgreSQL), so a restart
 * loses nothing. One process consumes; jobs dispatch as soon as they are added. A failed attempt
 * with backoff waits in `waiting` with `run_after` set; a timer wakes the queue when it is due.
 */
export class LocalQueue implements JobQueue {
  readonly kind = 'local' as const;
  readonly #db: Database['db'];
  readonly #consumers = new Map<string, Consumer>();
  readonly #active = new Set<Promise<void>>();
  readonly #adds = new Map<string, number>();
  readonly #timers = new Map<string, { due: number; timer: NodeJS.Timeout }>();
  #closed = false;
  #recovered = false;

  constructor(database: Database) {
    this.#db = database.db;
  }

  async #recover(): Promise<void> {
    if (this.#recovered) return;
    this.#recovered = true;
    const now = Date.now();
    await this.#db
      .updateTable('queue_jobs')
      .set({ state: 'failed', error: 'interrupted', updated_at: now })
      .where('state', '=', 'active')
      .whereRef('attempts', '>=', 'max_attempts')
      .execute();
    await this.#db.updateTable('queue_jobs').set({ state: 'waiting', updated_at: now }).where('state', '=', 'active').execute();
  }

  async add<T>(queue: string, name: string, data: T, options: AddOptions = {}): Promise<string> {
    await this.#recover();
    const id = options.jobId ?? randomUUID();
    const now = Date.now();
    await this.#db
      .insertInto('queue_jobs')
      .values({
        id,
        queue,
        name,
        data: JSON.stringify(data ?? null),
        state: 'waiting',
        attempts: 0,
        max_attempts: Math.max(1, options.attempts ?? 1),
        backoff_ms: Math.max(0, Math.floor(options.backoffMs ?? 0)),
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    this.#adds.set(queue, (this.#adds.get(queue) ?? 0) + 1);
    this.#pump(queue);
    return id;
  }

  async process<T>(queue: string, handler: JobHandler<T>, options: { concurrency?: number } = {}): Promise<void> {
    if (this.#consumers.has(queue)) throw new Error(`queue '${queue}' already has a consumer`);
    await this.#recover();
    this.#consumers.set(queue, { handler, concurrency: Math.max(1, options.concurrency ?? 1), running: 0 });
    this.#pump(queue);
  }

  #pump(queue: string): void {
    const consumer = this.#consumers.get(queue);
    if (!consumer || this.#closed) return;
    while (consumer.running < consumer.concurrency) {
      consumer.running++;
      const seenAdds = this.#adds.get(queue) ?? 0;
      const run: Promise<void> = this.#runNext(queue, consumer)
        .catch(() => false)
        .then((ran) => {
          consumer.running--;
          this.#active.delete(run);
          // Claim again after a job ran, or when a job was added while this slot looked empty.
          if (ran || (this.#adds.get(queue) ?? 0) !== seenAdds) this.#pump(queue);
        });
      this.#active.add(run);
    }
  }

  /** Claims the oldest waiting job that is due and runs it; false when none was. */
  async #runNext(queue: string, consumer: Consumer): Promise<boolean> {
    if (this.#closed) return false;
    const now = Date.now();
    const row = await this.#db
      .selectFrom('queue_jobs')
      .selectAll()
      .where('queue', '=', queue)
      .where('state', '=', 'waiting')
      .where((eb) => eb.or([eb('run_after', 'is', null), eb('run_after', '<=', now)]))
      .orderBy('created_at')
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    if (!row) {
      await this.#wakeForNextDue(queue);
      return false;
    }
    const claimed = await this.#db
      .updateTable('queue_jobs')
      .set({ state: 'active', attempts: row.attempts + 1, updated_at: Date.now() })
      .where('id', '=', row.id)
      .where('state', '=', 'waiting')
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return true;
    const attempt = row.attempts + 1;
    try {
      const result = await consumer.handler({
        id: row.id,
        name: row.name,
        data: JSON.parse(row.data),
        attempt,
        updateProgress: async (progress) => {
          await this.#db
            .updateTable('queue_jobs')
            .set({ progress: JSON.stringify(progress ?? null), updated_at: Date.now() })
            .where('id', '=', row.id)
            .execute();
        },
      });
      await this.#finish(row.id, 'completed', { result: JSON.stringify(result ?? null) });
    } catch (err) {
      const retry = attempt < row.max_attempts && !this.#closed && !(err instanceof PermanentJobError);
      const delay = retry ? Number(row.backoff_ms ?? 0) * 2 ** (attempt - 1) : 0;
      await this.#finish(row.id, retry ? 'waiting' : 'failed', { error: (err as Error)?.message ?? String(err), run_after: delay > 0 ? Date.now() + delay : null });
    }
    return true;
  }

  /** Arms one timer for the earliest delayed retry of `queue`, so it runs when due. */
  async #wakeForNextDue(queue: string): Promise<void> {
    const next = await this.#db
      .selectFrom('queue_jobs')
      .select((eb) => eb.fn.min('run_after').as('due'))
      .where('queue', '=', queue)
      .where('state', '=', 'waiting')
      .where('run_after', 'is not', null)
      .executeTakeFirst();
    const due = next?.due === null || next?.due === undefined ? null : Number(next.due);
    const armed = this.#timers.get(queue);
    if (due === null || this.#closed || (armed && armed.due <= due)) return;
    if (armed) clearTimeout(armed.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(queue);
      this.#adds.set(queue, (this.#adds.get(queue) ?? 0) + 1);
      this.#pump(queue);
    }, Math.max(0, due - Date.now()) + 5);
    timer.unref();
    this.#timers.set(queue, { due, timer });
  }

  async #finish(id: string, state: JobState, values: { result?: string; error?: string; run_after?: number | null }): Promise<void> {
    try {
      await this.#db.updateTable('queue_jobs').set({ state, ...values, updated_at: Date.now() }).where('id', '=', id).execute();
    } catch {
      /* database closed during shutdown: the job stays active and is recovered on the next start */
    }
  }

  async get<T = unknown>(queue: string, id: string): Promise<JobRecord<T> | null> {
    const row = await this.#db.selectFrom('queue_jobs').selectAll().where('queue', '=', queue).where('id', '=', id).executeTakeFirst();
    if (!row) return null;
    return {
      id: row.id,
      queue: row.queue,
      name: row.name,
      data: JSON.parse(row.data),
      state: row.state,
      attempts: row.attempts,
      progress: row.progress ? JSON.parse(row.progress) : null,
      result: row.result ? JSON.parse(row.result) : null,
      error: row.error ?? null,
      retryAt: row.state === 'waiting' && row.run_after !== null && Number(row.run_after) > Date.now() ? Number(row.run_after) : null,
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
    };
  }

  async counts(queue: string): Promise<Record<JobState, number>> {
    const rows = await this.#db
      .selectFrom('queue_jobs')
      .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
      .where('queue', '=', queue)
      .groupBy('state')
      .execute();
    const out: Record<JobState, number> = { waiting: 0, active: 0, completed: 0, failed: 0 };
    for (const r of rows) out[r.state as JobState] = Number(r.n);
    return out;
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#active]);
  }
}
