import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
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

const WORKER = new URL('./drift-worker.ts', import.meta.url);
const WORKER_JS = new URL('./drift-worker.js', import.meta.url);

/** Worker threads need the TypeScript loader the main thread runs under (tsx in development). */
function workerExecArgv(): string[] {
  const argv = process.execArgv;
  return argv.some((a) => a.includes('tsx')) ? argv : [...argv, '--import', 'tsx'];
}

/** Heaviest groups first, so they start at once on separate threads. */
const SCHEDULE: readonly DriftStep[] = ['embedding_mmd', 'embedding_classifier', 'data', 'prediction'];

type StepResult = { ok: true; value: DriftComputation } | { ok: false; code: string | null; message: string };

/**
 * Runs the detector groups of each check on a piscina pool of worker threads (like the image
 * pool), heaviest first, so MMD and the domain classifier run in parallel. Each task receives only
 * the columns its group reads. When the pool cannot start a thread at all the runner falls back to
 * {@link InlineDriftRunner}.
 */
export class WorkerDriftRunner implements DriftRunner {
  readonly mode = 'worker' as const;
  readonly #logger: Logger | undefined;
  readonly #inline = new InlineDriftRunner();
  readonly #pool: Piscina;
  #broken = false;
  #closed = false;

  constructor(options: { logger?: Logger; threads?: number } = {}) {
    this.#logger = options.logger;
    const threads = Math.max(1, Math.min(options.threads ?? Math.min(2, availableParallelism()), 4));
    const compiled = import.meta.url.endsWith('.js');
    this.#pool = new Piscina({
      filename: (compiled ? WORKER_JS : WORKER).href,
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: 60_000,
      ...(compiled ? {} : { execArgv: workerExecArgv() }),
    });
    this.#pool.on('error', (err: unknown) => this.#logger?.error({ err }, 'a drift worker thread failed; piscina replaces it'));
  }

  /** true once a worker could not start and computations run inline instead. */
  get fellBack(): boolean {
    return this.#broken;
  }

  async run(reference: DriftSide, current: DriftSide, options: DriftOptions, seed: string): Promise<DriftComputation> {
    if (this.#closed) throw new AppError('SERVICE_UNAVAILABLE', 'the drift runner is closed');
    if (this.#broken) return this.#inline.run(reference, current, options, seed);
    let parts: DriftComputation[];
    try {
      parts = await Promise.all(SCHEDULE.map((step) => this.#step(step, reference, current, options, seed)));
    } catch (err) {
      if (err instanceof AppError || this.#closed) throw err;
      // The pool itself failed (no thread could start): compute inline from now on.
      this.#logger?.warn({ err }, 'drift worker threads unavailable; running drift checks on the main thread');
      this.#broken = true;
      return this.#inline.run(reference, current, options, seed);
    }
    const byStep = new Map(SCHEDULE.map((step, i) => [step, parts[i]!]));
    return merge(DRIFT_STEPS.map((s) => byStep.get(s)!));
  }

  async #step(step: DriftStep, reference: DriftSide, current: DriftSide, options: DriftOptions, seed: string): Promise<DriftComputation> {
    const r = (await this.#pool.run({ step, reference: sideFor(step, reference), current: sideFor(step, current), options, seed })) as StepResult;
    if (r.ok) return r.value;
    throw r.code ? new AppError(r.code as ErrorCode, r.message) : new Error(r.message);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.destroy();
  }
}

export function createDriftRunner(useWorker: boolean, logger?: Logger): DriftRunner {
  return useWorker ? new WorkerDriftRunner({ ...(logger ? { logger } : {}) }) : new InlineDriftRunner();
}
