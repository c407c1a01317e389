import type { TrainerEvent } from './events.js';

/** What the worker is asked to do: `python -m trainer run|optimize --spec <file>`. */
export type WorkerCommand = 'run' | 'optimize';

export interface WorkerStart {
  command: WorkerCommand;
  /** The job or study spec (trainer/README.md); written to `specPath` before the start. */
  spec: Record<string, unknown>;
  /** Where the spec file goes (the runner creates the folder). */
  specPath: string;
  /** Appends the worker's stderr and non-JSON stdout here (optional). */
  logPath?: string;
  /** Torch/OpenMP threads for each worker process (also passed in the spec as `threads`). */
  threads: number;
  /**
   * Processes of one data-parallel job (default 1). Above 1 the worker is launched by torchrun;
   * rank 0 alone writes the events, so the stream is the same as with one process.
   */
  processes?: number;
}

export interface WorkerExit {
  /** Exit status, or null when the worker was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * One running worker. `events` yields every protocol event in order and ends after the worker has
 * exited; if the worker ended without a terminal event (`finished`/`failed`/`cancelled`, or
 * `study_finished`/`failed` for a study), a synthetic `failed` event carrying the exit status and
 * the tail of stderr is yielded last, so consumers always see exactly how the attempt ended.
 */
export interface TrainerHandle {
  /** Process id (local runner) or another runner-specific id; for operators and tests. */
  readonly pid: number | undefined;
  readonly events: AsyncIterable<TrainerEvent>;
  /** Asks the worker to stop: it saves a checkpoint and reports `cancelled` (SIGTERM locally). */
  cancel(): void;
  /** Ends the worker at once, without a checkpoint (SIGKILL locally). */
  kill(): void;
  /** Settles when the worker process has exited. */
  readonly exit: Promise<WorkerExit>;
  /** The last lines the worker wrote to stderr. */
  stderrTail(): string;
}

/**
 * Starts trainer workers. The local implementation spawns a subprocess; the same protocol lets a
 * Kubernetes Job or a remote GPU box run them (a runner that streams the pod's stdout).
 */
export interface TrainerRunner {
  readonly kind: string;
  /** Throws AppError TRAINER_RUNTIME_MISSING when no usable worker runtime exists. */
  start(options: WorkerStart): Promise<TrainerHandle>;
  /** Describes the runtime (interpreter, torch version) or throws TRAINER_RUNTIME_MISSING. */
  runtime(): Promise<RuntimeInfo>;
}

export interface RuntimeInfo {
  python: string;
  torch: string;
  optuna: string | null;
}

/** Terminal events per command: anything else before exit means the worker died. */
export const TERMINAL_EVENTS: Readonly<Record<WorkerCommand, readonly string[]>> = {
  run: ['finished', 'failed', 'cancelled'],
  optimize: ['study_finished', 'failed'],
};
