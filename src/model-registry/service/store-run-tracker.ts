import { CREATED_BY_TRAINING, experimentIdCache } from '../client/experiment-ids.js';
import type { ExperimentSummary, Page, PageRequest, RunTracker, StartRunInput } from '../client/types.js';
import type { Experiment, KeyValue, Run, TrackingStore } from '../store/tracking-store.js';

const MAX_PARAM_VALUE = 6000;

/** {@link RunTracker} on the model registry's tracking store: the in-process client's tracking. */
export class StoreRunTracker implements RunTracker {
  readonly kind = 'registry' as const;
  readonly #store: TrackingStore;
  readonly #experimentId: (name: string) => Promise<string>;

  constructor(store: TrackingStore) {
    this.#store = store;
    this.#experimentId = experimentIdCache({
      byName: async (name) => (await store.getExperimentByName(name)).experiment_id,
      create: (name) => store.createExperiment({ name, tags: [CREATED_BY_TRAINING] }),
    });
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
