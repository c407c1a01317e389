import { AppError } from '../../core/errors.js';
import type { Logger } from 'pino';
import type { ExperimentSummary, Run, RunTracker, StartRunInput } from '../../model-registry/client/index.js';
import type { Page } from '../store/types.js';

export const DEFAULT_EXPERIMENT = 'pneumonia';

export type { ExperimentSummary, RunTracker, StartRunInput } from '../../model-registry/client/index.js';

/**
 * Wraps a tracker so a tracking outage never fails a training job: errors are logged and the
 * call returns (startRun returns null then, and later calls for that run are skipped).
 */
export class SafeTracker {
  constructor(
    readonly tracker: RunTracker,
    private readonly logger: Logger,
  ) {}

  async #safe<T>(what: string, fn: () => Promise<T>): Promise<T | null> {
    try {
      return await fn();
    } catch (err) {
      this.logger.warn({ err, what }, 'experiment tracking call failed; training goes on');
      return null;
    }
  }

  startRun(input: StartRunInput): Promise<string | null> {
    return this.#safe('startRun', () => this.tracker.startRun(input));
  }

  async reopenRun(runId: string | null): Promise<void> {
    if (runId) await this.#safe('reopenRun', () => this.tracker.reopenRun(runId));
  }

  async logMetrics(runId: string | null, metrics: Record<string, number | null | undefined>, step: number): Promise<void> {
    if (runId) await this.#safe('logMetrics', () => this.tracker.logMetrics(runId, metrics, step));
  }

  async setTags(runId: string | null, tags: Record<string, string>): Promise<void> {
    if (runId) await this.#safe('setTags', () => this.tracker.setTags(runId, tags));
  }

  async logArtifact(runId: string | null, path: string, data: () => Promise<Buffer>): Promise<void> {
    if (runId) await this.#safe('logArtifact', async () => this.tracker.logArtifact(runId, path, await data()));
  }

  async endRun(runId: string | null, status: 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void> {
    if (runId) await this.#safe('endRun', () => this.tracker.endRun(runId, status));
  }
}

/** Used when no tracking store is available: runs are not recorded beyond the job rows. */
export class NoRunTracker implements RunTracker {
  readonly kind = 'none' as const;
  async startRun(): Promise<string> {
    throw new AppError('NOT_IMPLEMENTED', 'experiment tracking is not available');
  }
  async reopenRun(): Promise<void> {}
  async logMetrics(): Promise<void> {}
  async setTags(): Promise<void> {}
  async logArtifact(): Promise<void> {}
  async endRun(): Promise<void> {}
  async listExperiments(): Promise<Page<ExperimentSummary>> {
    return { items: [] };
  }
  async listRuns(): Promise<Page<Run>> {
    return { items: [] };
  }
}
