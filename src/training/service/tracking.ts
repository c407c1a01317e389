import { AppError } from '../../core/errors.js';
import type { Logger } from 'pino';
import type { TrackingStore, RunStatus, KeyValue, Experiment, Run } from '../../model-registry/store/tracking-store.js';
import type { Page, PageRequest } from '../store/types.js';

export const DEFAULT_EXPERIMENT = 'pneumonia';

export interface StartRunInput {
  experiment: string;
  runName: string;
  userId: string;
  params: Record<string, string | number | boolean | null>;
  tags: Record<string, string>;
  dataset?: { name: string; digest: string; source: string };
}

export interface ExperimentSummary {
  experiment_id: string;
  name: string;
  creation_time: number;
  last_update_time: number;
  tags: KeyValue[];
}

/**
 * Experiment tracking as training uses it (MLflow-shaped): one run per job or trial, params once,
 * metrics per epoch with the epoch as step, tags, the dataset input, artifacts and a final status.
 */
export interface RunTracker {
  readonly kind: 'registry' | 'none';
  /** Creates the experiment if needed and starts a run; returns its id. */
  startRun(input: StartRunInput): Promise<string>;
  /** Marks an existing run RUNNING again (a resumed job keeps its run). */
  reopenRun(runId: string): Promise<void>;
  logMetrics(runId: string, metrics: Record<string, number | null | undefined>, step: number): Promise<void>;
  setTags(runId: string, tags: Record<string, string>): Promise<void>;
  logArtifact(runId: string, path: string, data: Buffer): Promise<void>;
  endRun(runId: string, status: Extract<RunStatus, 'FINISHED' | 'FAILED' | 'KILLED'>): Promise<void>;
  listExperiments(page: PageRequest): Promise<Page<ExperimentSummary>>;
  /** Runs of one experiment, newest first. */
  listRuns(experimentId: string, page: PageRequest): Promise<Page<Run>>;
}

const MAX_PARAM_VALUE = 6000;

/** {@link RunTracker} on the model registry's tracking store. */
export class RegistryRunTracker implements RunTracker {
  readonly kind = 'registry' as const;
  readonly #store: TrackingStore;
  readonly #experiments = new Map<string, Promise<string>>();

  constructor(store: TrackingStore) {
    this.#store = store;
  }

  #experimentId(name: string): Promise<string> {
    let id = this.#experiments.get(name);
    if (!id) {
      id = (async () => {
        try {
          return (await this.#store.getExperimentByName(name)).experiment_id;
        } catch (err) {
          if (!(err instanceof AppError) || err.code !== 'NOT_FOUND') throw err;
        }
        try {
          return await this.#store.createExperiment({ name, tags: [{ key: 'xray.created_by', value: 'training' }] });
        } catch (err) {
          if (err instanceof AppError && err.code === 'ALREADY_EXISTS') return (await this.#store.getExperimentByName(name)).experiment_id;
          throw err;
        }
      })();
      id.catch(() => this.#experiments.delete(name));
      this.#experiments.set(name, id);
    }
    return id;
  }

  async startRun(input: StartRunInput): Promise<string> {
    const experimentId = await this.#experimentId(input.experiment);
    const run = await this.#store.createRun({
      experimentId,
      userId: input.userId,
      runName: input.runName,
      startTime: Date.now(),
      tags: toKeyValues(input.tags),
    });
    const runId = run.info.run_id;
    const params = Object.entries(input.params)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([key, value]) => ({ key, value: String(value).slice(0, MAX_PARAM_VALUE) }));
    for (let i = 0; i < params.length; i += 100) await this.#store.logBatch(runId, { params: params.slice(i, i + 100) });
    if (input.dataset) {
      await this.#store.logInputs(runId, [
        {
          tags: [{ key: 'mlflow.data.context', value: 'training' }],
          dataset: { name: input.dataset.name, digest: input.dataset.digest.slice(0, 36), source_type: 'xray-dataset-version', source: input.dataset.source },
        },
      ]);
    }
    return runId;
  }

  async reopenRun(runId: string): Promise<void> {
    await this.#store.updateRun(runId, { status: 'RUNNING' });
  }

  async logMetrics(runId: string, metrics: Record<string, number | null | undefined>, step: number): Promise<void> {
    const timestamp = Date.now();
    const points = Object.entries(metrics)
      .filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]))
      .map(([key, value]) => ({ key, value, timestamp, step }));
    if (points.length) await this.#store.logBatch(runId, { metrics: points });
  }

  async setTags(runId: string, tags: Record<string, string>): Promise<void> {
    await this.#store.logBatch(runId, { tags: toKeyValues(tags) });
  }

  async logArtifact(runId: string, path: string, data: Buffer): Promise<void> {
    await this.#store.putArtifact(runId, path, data);
  }

  async endRun(runId: string, status: 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void> {
    await this.#store.updateRun(runId, { status, endTime: Date.now() });
  }

  async listExperiments(page: PageRequest): Promise<Page<ExperimentSummary>> {
    const result = await this.#store.searchExperiments({ pageSize: page.pageSize, pageToken: page.pageToken, viewType: 'ACTIVE_ONLY' });
    return { items: result.items.map(summary), ...(result.nextPageToken ? { nextPageToken: result.nextPageToken } : {}) };
  }

  listRuns(experimentId: string, page: PageRequest): Promise<Page<Run>> {
    return this.#store.searchRuns({ experimentIds: [experimentId], pageSize: page.pageSize, pageToken: page.pageToken });
  }
}

function summary(e: Experiment): ExperimentSummary {
  return { experiment_id: e.experiment_id, name: e.name, creation_time: e.creation_time, last_update_time: e.last_update_time, tags: e.tags };
}

function toKeyValues(tags: Record<string, string>): KeyValue[] {
  return Object.entries(tags).map(([key, value]) => ({ key, value: String(value).slice(0, 5000) }));
}

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
