import { AppError } from '../../core/errors.js';
import { CREATED_BY_TRAINING, experimentIdCache } from './experiment-ids.js';
import type { ServiceHttpClient } from '../../core/http/service-client.js';
import type { ExperimentSummary, Page, PageRequest, Run, RunStatus, RunTracker, StartRunInput } from './types.js';

const API = '/api/2.0/mlflow';
const MAX_PARAM_VALUE = 6000;
const kv = (tags: Record<string, string>) => Object.entries(tags).map(([key, value]) => ({ key, value: String(value).slice(0, 5000) }));

/** {@link RunTracker} over the registry's MLflow REST API (what `mlflow.start_run()` … calls). */
export class HttpRunTracker implements RunTracker {
  readonly kind = 'registry' as const;
  readonly #http: ServiceHttpClient;
  readonly #experimentId: (name: string) => Promise<string>;

  constructor(http: ServiceHttpClient) {
    this.#http = http;
    this.#experimentId = experimentIdCache({
      byName: async (name) => (await http.call<{ experiment: { experiment_id: string } }>('GET', `${API}/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`)).experiment.experiment_id,
      create: async (name) => (await this.#post<{ experiment_id: string }>('/experiments/create', { name, tags: [CREATED_BY_TRAINING] })).experiment_id,
    });
  }

  #post<T>(path: string, body: unknown): Promise<T> {
    return this.#http.call<T>('POST', `${API}${path}`, { body });
  }

  async startRun(input: StartRunInput): Promise<string> {
    const experimentId = await this.#experimentId(input.experiment);
    const { run } = await this.#post<{ run: Run }>('/runs/create', { experiment_id: experimentId, user_id: input.userId, run_name: input.runName, start_time: Date.now(), tags: kv(input.tags) });
    const runId = run.info.run_id;
    const params = Object.entries(input.params)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([key, value]) => ({ key, value: String(value).slice(0, MAX_PARAM_VALUE) }));
    for (let i = 0; i < params.length; i += 100) await this.#post('/runs/log-batch', { run_id: runId, params: params.slice(i, i + 100) });
    if (input.dataset) {
      await this.#post('/runs/log-inputs', {
        run_id: runId,
        datasets: [
          {
            tags: [{ key: 'mlflow.data.context', value: 'training' }],
            dataset: { name: input.dataset.name, digest: input.dataset.digest.slice(0, 36), source_type: 'xray-dataset-version', source: input.dataset.source },
          },
        ],
      });
    }
    return runId;
  }

  async reopenRun(runId: string): Promise<void> {
    await this.#post('/runs/update', { run_id: runId, status: 'RUNNING' satisfies RunStatus });
  }

  async logMetrics(runId: string, metrics: Record<string, number | null | undefined>, step: number): Promise<void> {
    const timestamp = Date.now();
    const points = Object.entries(metrics)
      .filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]))
      .map(([key, value]) => ({ key, value, timestamp, step }));
    if (points.length) await this.#post('/runs/log-batch', { run_id: runId, metrics: points });
  }

  async setTags(runId: string, tags: Record<string, string>): Promise<void> {
    await this.#post('/runs/log-batch', { run_id: runId, tags: kv(tags) });
  }

  async logArtifact(runId: string, path: string, data: Buffer): Promise<void> {
    if (path.split('/').some((s) => s === '..' || s === '')) throw new AppError('INVALID_INPUT', `'${path}' is not a relative artifact path`);
    // The proxy's layout is <experiment_id>/<run_id>/artifacts/<path>; the run id alone identifies the run.
    const file = path.split('/').map(encodeURIComponent).join('/');
    await this.#http.call('PUT', `/api/2.0/mlflow-artifacts/artifacts/0/${runId}/artifacts/${file}`, { raw: data });
  }

  async endRun(runId: string, status: 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void> {
    await this.#post('/runs/update', { run_id: runId, status, end_time: Date.now() });
  }

  async listExperiments(page: PageRequest): Promise<Page<ExperimentSummary>> {
    const res = await this.#post<{ experiments?: ExperimentSummary[]; next_page_token?: string }>('/experiments/search', {
      view_type: 'ACTIVE_ONLY',
      ...(page.pageSize ? { max_results: page.pageSize } : {}),
      ...(page.pageToken ? { page_token: page.pageToken } : {}),
    });
    const items = (res.experiments ?? []).map((e) => ({ experiment_id: e.experiment_id, name: e.name, creation_time: e.creation_time, last_update_time: e.last_update_time, tags: e.tags ?? [] }));
    return { items, ...(res.next_page_token ? { nextPageToken: res.next_page_token } : {}) };
  }

  async listRuns(experimentId: string, page: PageRequest): Promise<Page<Run>> {
    const res = await this.#post<{ runs?: Run[]; next_page_token?: string }>('/runs/search', {
      experiment_ids: [experimentId],
      ...(page.pageSize ? { max_results: page.pageSize } : {}),
      ...(page.pageToken ? { page_token: page.pageToken } : {}),
    });
    return { items: res.runs ?? [], ...(res.next_page_token ? { nextPageToken: res.next_page_token } : {}) };
  }
}
