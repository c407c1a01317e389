/** Worker-thread entry: runs the drift detector groups posted by {@link WorkerDriftRunner}. */
import { parentPort } from 'node:worker_threads';
import { computeDriftStep, type DriftOptions, type DriftSide, type DriftStep } from './drift-compute.js';

interface StepJob {
  id: number;
  step: DriftStep;
  reference: DriftSide;
  current: DriftSide;
  options: DriftOptions;
  seed: string;
}

const port = parentPort;
if (port) {
  port.on('message', (job: StepJob) => {
    try {
      port.postMessage({ id: job.id, result: computeDriftStep(job.step, job.reference, job.current, job.options, job.seed) });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      port.postMessage({ id: job.id, error: { code: e.code ?? null, message: e.message ?? String(err) } });
    }
  });
  port.postMessage({ ready: true });
}
