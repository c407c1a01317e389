/** Worker-thread entry: runs drift computations posted by {@link WorkerDriftRunner}. */
import { parentPort } from 'node:worker_threads';
import { computeDrift, type DriftOptions, type DriftSide } from './drift-compute.js';

interface Job {
  id: number;
  reference: DriftSide;
  current: DriftSide;
  options: DriftOptions;
  seed: string;
}

const port = parentPort;
if (port) {
  port.on('message', (job: Job) => {
    try {
      port.postMessage({ id: job.id, result: computeDrift(job.reference, job.current, job.options, job.seed) });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      port.postMessage({ id: job.id, error: { code: e.code ?? null, message: e.message ?? String(err) } });
    }
  });
  port.postMessage({ ready: true });
}
