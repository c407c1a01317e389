/** Piscina worker entry: runs one drift detector group for {@link WorkerDriftRunner}. */
import { computeDriftStep, type DriftComputation, type DriftOptions, type DriftSide, type DriftStep } from './drift-compute.js';

interface StepTask {
  step: DriftStep;
  reference: DriftSide;
  current: DriftSide;
  options: DriftOptions;
  seed: string;
}

/** Errors cross the thread boundary as data (their AppError code kept), not as thrown clones. */
export default function run(task: StepTask): { ok: true; value: DriftComputation } | { ok: false; code: string | null; message: string } {
  try {
    return { ok: true, value: computeDriftStep(task.step, task.reference, task.current, task.options, task.seed) };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { ok: false, code: e.code ?? null, message: e.message ?? String(err) };
  }
}
