import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { AppError, type ErrorCode } from '../../core/errors.js';
import { computeDriftStep, DRIFT_STEPS, sideFor, type DriftComputation, type DriftOptions, type DriftSide, type DriftStep } from './drift-compute.js';

/** Runs drift computations off the request path. */
export interface DriftRunner {
  readonly mode: 'worker' | 'inline';
  run(reference: DriftSide, current: DriftSide, options: DriftOptions, seed: string): Promise<DriftComputation>;
  close(): Promise<void>;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function merge(parts: DriftComputation[]): DriftComputation {
  return { checks: parts.flatMap((p) => p.checks), features: parts.flatMap((p) => p.features) };
}

/**
 * Runs the detectors on the main thread, one group per macrotask, so requests are served between
 * groups (a group takes up to a few hundred ms on 10,000 rows).
 */
export class InlineDriftRunner implements DriftRunner {
  readonly mode = 'inline' as const;

  async run(reference: DriftSide, current: DriftSide, options: DriftOptions, seed: string): Promise<DriftComputation> {
    const parts: DriftComputation[] = [];
    for (const step of DRIFT_STEPS) {
      await yieldToEventLoop();
      parts.push(computeDriftStep(step, reference, current, options, seed));
    }
    return merge(parts);
  }

  async close(): Promise<void> {}
}

interface Job {
  id: number;
  step: DriftStep;
  reference: DriftSide;
  current: DriftSide;
  options: DriftOptions;
  seed: string;
  resolve: (r: DriftComputation) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: Promise<boolean>;
  job: Job | null;
}

type WorkerMessage = { ready?: boolean; id?: number; result?: DriftComputation; error?: { code: string | null; message: string } };

function workerSpec(): { url: URL; options: ConstructorParameters<typeof Worker>[1] } {
  const self = import.meta.url;
  if (self.endsWith('.ts')) {
    // Running from sources under tsx: worker threads do not inherit its loader; boot through it.
    return {
      url: new URL('./worker-boot.mjs', self),
      options: { workerData: { tsxApi: import.meta.resolve('tsx/esm/api'), entry: new URL('./drift-worker.ts', self).href } },
    };
  }
  return { url: new URL('./drift-worker.js', self), options: {} };
}

/** Heaviest groups first, so they start at once on separate threads. */
const SCHEDULE: readonly DriftStep[] = ['embedding_mmd', 'embedding_classifier', 'data', 'prediction'];

/**
 * Runs the detector groups of each check on a small pool of long-lived worker threads (started on
 * first use, restarted after a crash), heaviest first, so MMD and the domain classifier run in
 * parallel. Each worker receives only the columns its group reads. When a worker cannot start at
 * all the runner falls back to {@link InlineDriftRunner}.
 */
export class WorkerDriftRunner implements DriftRunner {
  readonly mode = 'worker' as const;
  readonly #logger: Logger | undefined;
  readonly #threads: number;
  readonly #inline = new InlineDriftRunner();
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #broken = false;
  #closed = false;
  #nextId = 1;
  /** run() calls in progress: while any is, every worker keeps the process alive. */
  #active = 0;

  constructor(options: { logger?: Logger; threads?: number } = {}) {
    this.#logger = options.logger;
    this.#threads = Math.max(1, Math.min(options.threads ?? Math.min(2, availableParallelism()), 4));
  }

  /** true once a worker could not start and computations run inline instead. */
  get fellBack(): boolean {
    return this.#broken;
  }

  async run(reference: DriftSide, current: DriftSide, options: DriftOptions, seed: string): Promise<DriftComputation> {
    if (this.#closed) throw new AppError('SERVICE_UNAVAILABLE', 'the drift runner is closed');
    this.#active++;
    try {
      return await this.#run(reference, current, options, seed);
    } finally {
      if (--this.#active === 0) for (const slot of this.#slots) slot.worker?.unref();
    }
  }

  async #run(reference: DriftSide, current: DriftSide, options: DriftOptions, seed: string): Promise<DriftComputation> {
    for (const slot of this.#slots) slot.worker?.ref();
    if (!this.#broken) {
      while (this.#slots.length < this.#threads) this.#slots.push(this.#spawn());
      const ready = await Promise.all(this.#slots.map((s) => s.ready));
      if (ready.some((ok) => !ok)) this.#broken = true;
    }
    if (this.#broken) return this.#inline.run(reference, current, options, seed);
    const results = new Map<DriftStep, DriftComputation>();
    await Promise.all(
      SCHEDULE.map(
        (step) =>
          new Promise<void>((resolve, reject) => {
            this.#queue.push({
              id: this.#nextId++,
              step,
              reference: sideFor(step, reference),
              current: sideFor(step, current),
              options,
              seed,
              resolve: (r) => {
                results.set(step, r);
                resolve();
              },
              reject,
            });
            this.#dispatch();
          }),
      ),
    );
    return merge(DRIFT_STEPS.map((s) => results.get(s)!));
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.job || this.#queue.length === 0) continue;
      const job = this.#queue.shift()!;
      slot.job = job;
      const { resolve: _r, reject: _e, ...message } = job;
      slot.worker.postMessage(message);
    }
  }

  #spawn(): Slot {
    let resolveReady!: (ok: boolean) => void;
    const slot: Slot = { worker: null as unknown as Worker, ready: new Promise<boolean>((r) => (resolveReady = r)), job: null };
    let started = false;
    try {
      const spec = workerSpec();
      slot.worker = new Worker(spec.url, spec.options);
    } catch (err) {
      this.#giveUp(err);
      resolveReady(false);
      return slot;
    }
    // Referenced while a run() is in progress (someone awaits it), unreferenced when the runner is idle.
    const worker = slot.worker;
    worker.on('message', (msg: WorkerMessage) => {
      if (msg.ready) {
        started = true;
        if (this.#active === 0) worker.unref();
        resolveReady(true);
        return;
      }
      const job = slot.job;
      if (!job || job.id !== msg.id) return;
      slot.job = null;
      if (msg.error) job.reject(msg.error.code ? new AppError(msg.error.code as ErrorCode, msg.error.message) : new Error(msg.error.message));
      else job.resolve(msg.result!);
      this.#dispatch();
    });
    worker.on('error', (err) => {
      if (!started) this.#giveUp(err);
      else this.#logger?.error({ err }, 'drift worker crashed; a new one starts for the next check');
    });
    worker.on('exit', (code) => {
      resolveReady(false);
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots.splice(i, 1);
      slot.job?.reject(this.#closed ? new AppError('SERVICE_UNAVAILABLE', 'the drift runner was closed') : new Error(`drift worker exited with code ${code}`));
      slot.job = null;
      if (!this.#closed && this.#queue.length > 0) {
        this.#slots.push(this.#spawn());
        this.#dispatch();
      }
    });
    return slot;
  }

  #giveUp(err: unknown): void {
    if (!this.#broken) this.#logger?.warn({ err }, 'drift worker threads unavailable; running drift checks on the main thread');
    this.#broken = true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new AppError('SERVICE_UNAVAILABLE', 'the drift runner was closed'));
    // Referenced again so the process waits for the threads to stop instead of exiting under us.
    await Promise.all(
      this.#slots.splice(0).map((s) => {
        s.worker.ref();
        return s.worker.terminate();
      }),
    );
  }
}

export function createDriftRunner(useWorker: boolean, logger?: Logger): DriftRunner {
  return useWorker ? new WorkerDriftRunner({ ...(logger ? { logger } : {}) }) : new InlineDriftRunner();
}
