import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { AppError, type ErrorCode } from '../../core/errors.js';
import { computeDriftStep, DRIFT_STEPS, type DriftComputation, type DriftOptions, type DriftSide } from './drift-compute.js';

/** Runs drift computations off the request path. */
export interface DriftRunner {
  readonly mode: 'worker' | 'inline';
  run(reference: DriftSide, current: DriftSide, options: DriftOptions, seed: string): Promise<DriftComputation>;
  close(): Promise<void>;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs the detectors on the main thread, one group per macrotask, so requests are served between
 * groups (each group takes up to a few hundred ms on 10,000 rows).
 */
export class InlineDriftRunner implements DriftRunner {
  readonly mode = 'inline' as const;

  async run(reference: DriftSide, current: DriftSide, options: DriftOptions, seed: string): Promise<DriftComputation> {
    const out: DriftComputation = { checks: [], features: [] };
    for (const step of DRIFT_STEPS) {
      await yieldToEventLoop();
      const r = computeDriftStep(step, reference, current, options, seed);
      out.checks.push(...r.checks);
      out.features.push(...r.features);
    }
    return out;
  }

  async close(): Promise<void> {}
}

interface Pending {
  resolve: (r: DriftComputation) => void;
  reject: (e: Error) => void;
}

function workerSpec(): { url: URL; options: ConstructorParameters<typeof Worker>[1] } {
  const self = import.meta.url;
  if (self.endsWith('.ts')) {
    // Running from sources under tsx: boot the worker through tsx's loader.
    return {
      url: new URL('./worker-boot.mjs', self),
      options: { workerData: { tsxApi: import.meta.resolve('tsx/esm/api'), entry: new URL('./drift-worker.ts', self).href } },
    };
  }
  return { url: new URL('./drift-worker.js', self), options: {} };
}

/**
 * Runs each computation in one long-lived worker thread (started on first use, restarted after a
 * crash). When the worker cannot start at all it falls back to {@link InlineDriftRunner}.
 */
export class WorkerDriftRunner implements DriftRunner {
  readonly mode = 'worker' as const;
  readonly #logger: Logger | undefined;
  readonly #pending = new Map<number, Pending>();
  readonly #inline = new InlineDriftRunner();
  #worker: Worker | null = null;
  #ready: Promise<boolean> | null = null;
  #broken = false;
  #closed = false;
  #nextId = 1;

  constructor(logger?: Logger) {
    this.#logger = logger;
  }

  /** true once the worker could not start and computations run inline instead. */
  get fellBack(): boolean {
    return this.#broken;
  }

  async run(reference: DriftSide, current: DriftSide, options: DriftOptions, seed: string): Promise<DriftComputation> {
    if (this.#closed) throw new AppError('SERVICE_UNAVAILABLE', 'the drift runner is closed');
    if (this.#broken || !(await this.#start())) return this.#inline.run(reference, current, options, seed);
    const worker = this.#worker!;
    const id = this.#nextId++;
    return new Promise<DriftComputation>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, reference, current, options, seed });
    });
  }

  #start(): Promise<boolean> {
    if (this.#ready) return this.#ready;
    this.#ready = new Promise<boolean>((resolve) => {
      let started = false;
      let worker: Worker;
      try {
        const spec = workerSpec();
        worker = new Worker(spec.url, spec.options);
      } catch (err) {
        this.#giveUp(err);
        resolve(false);
        return;
      }
      this.#worker = worker;
      worker.unref();
      worker.on('message', (msg: { ready?: boolean; id?: number; result?: DriftComputation; error?: { code: string | null; message: string } }) => {
        if (msg.ready) {
          started = true;
          resolve(true);
          return;
        }
        const p = msg.id === undefined ? undefined : this.#pending.get(msg.id);
        if (!p) return;
        this.#pending.delete(msg.id!);
        if (this.#pending.size === 0) worker.unref();
        if (msg.error) p.reject(msg.error.code ? new AppError(msg.error.code as ErrorCode, msg.error.message) : new Error(msg.error.message));
        else p.resolve(msg.result!);
      });
      worker.on('error', (err) => {
        if (!started) {
          this.#giveUp(err);
          resolve(false);
        } else {
          this.#logger?.error({ err }, 'drift worker crashed; it restarts on the next check');
        }
        this.#failPending(err);
      });
      worker.on('exit', (code) => {
        if (this.#worker === worker) {
          this.#worker = null;
          if (started) this.#ready = null;
        }
        if (!started) resolve(false);
        this.#failPending(new Error(`drift worker exited with code ${code}`));
      });
    });
    return this.#ready;
  }

  #giveUp(err: unknown): void {
    this.#broken = true;
    this.#logger?.warn({ err }, 'drift worker thread unavailable; running drift checks on the main thread');
  }

  #failPending(err: Error): void {
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.reject(err);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = null;
    this.#failPending(new AppError('SERVICE_UNAVAILABLE', 'the drift runner was closed'));
    if (worker) await worker.terminate();
  }
}

export function createDriftRunner(useWorker: boolean, logger?: Logger): DriftRunner {
  return useWorker ? new WorkerDriftRunner(logger) : new InlineDriftRunner();
}
