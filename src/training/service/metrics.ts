import { Counter, Gauge, type Registry } from 'prom-client';
import { JOB_STATES, type JobState } from '../store/types.js';

/** Prometheus metrics of the training service, registered on the service app's registry. */
export class TrainingMetrics {
  readonly epochs: Counter<'model'>;
  readonly finished: Counter<'state'>;
  readonly imagesPerSecond: Gauge<'job_id' | 'model'>;

  /** @param countJobs answers jobs per state at scrape time (from the store, so every replica agrees). */
  constructor(registry: Registry, countJobs: () => Promise<Record<JobState, number>>) {
    new Gauge({
      name: 'xray_training_jobs',
      help: 'Training jobs by state',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        const counts = await countJobs().catch(() => null);
        if (!counts) return;
        for (const state of JOB_STATES) this.set({ state }, counts[state]);
      },
    });
    this.epochs = new Counter({ name: 'xray_training_epochs_total', help: 'Training epochs completed', labelNames: ['model'], registers: [registry] });
    this.finished = new Counter({
      name: 'xray_training_attempts_finished_total',
      help: 'Training attempts ended, by final state',
      labelNames: ['state'],
      registers: [registry],
    });
    this.imagesPerSecond = new Gauge({
      name: 'xray_training_images_per_second',
      help: 'Training throughput of each running job (last report)',
      labelNames: ['job_id', 'model'],
      registers: [registry],
    });
  }
}
