import { AppError } from '../../core/errors.js';
import type { AuditLog } from '../../core/audit/index.js';
import {
  LOG_BATCH_LIMITS,
  type CreateExperimentInput,
  type CreateRunInput,
  type DatasetInput,
  type KeyValue,
  type LogBatchInput,
  type Metric,
  type Run,
  type RunArtifact,
  type RunInfo,
  type TrackingStore,
  type UpdateRunInput,
} from '../store/tracking-store.js';

/** Who asks, for the audit trail. */
export interface RequestContext {
  actor: string;
  requestId?: string;
}

const SERVICE = 'model-registry';
const LOGGED_MODELS_TAG = 'mlflow.log-model.history';

/**
 * Experiment tracking on top of the TrackingStore: MLflow's request limits, defaults, and an audit
 * record per state change (one per batch, not per metric). Reads go straight to `store`.
 */
export class TrackingService {
  readonly store: TrackingStore;
  readonly #audit: AuditLog;

  constructor(store: TrackingStore, audit: AuditLog) {
    this.store = store;
    this.#audit = audit;
  }

  #record(ctx: RequestContext, action: string, resource: string, details?: Record<string, unknown>): void {
    this.#audit.record({ actor: ctx.actor, action, resource, requestId: ctx.requestId ?? null, service: SERVICE, details: details ?? null });
  }

  async createExperiment(input: CreateExperimentInput, ctx: RequestContext): Promise<string> {
    const id = await this.store.createExperiment(input);
    this.#record(ctx, 'experiment.create', `experiment:${id}`, { name: input.name });
    return id;
  }

  async createRun(input: CreateRunInput, ctx: RequestContext): Promise<Run> {
    const run = await this.store.createRun(input);
    this.#record(ctx, 'run.create', `run:${run.info.run_id}`, { experiment_id: run.info.experiment_id, run_name: run.info.run_name });
    return run;
  }

  async updateRun(runId: string, input: UpdateRunInput, ctx: RequestContext): Promise<RunInfo> {
    const info = await this.store.updateRun(runId, input);
    this.#record(ctx, 'run.update', `run:${runId}`, { ...input });
    return info;
  }

  async deleteRun(runId: string, ctx: RequestContext): Promise<void> {
    await this.store.deleteRun(runId);
    this.#record(ctx, 'run.delete', `run:${runId}`);
  }

  async restoreRun(runId: string, ctx: RequestContext): Promise<void> {
    await this.store.restoreRun(runId);
    this.#record(ctx, 'run.restore', `run:${runId}`);
  }

  /** runs/log-batch with MLflow's limits (1,000 metrics, 100 params, 100 tags, 1,000 in all). */
  async logBatch(runId: string, input: LogBatchInput, ctx: RequestContext): Promise<void> {
    const metrics = input.metrics ?? [];
    const params = input.params ?? [];
    const tags = input.tags ?? [];
    const over = (kind: string, limit: number, got: number) =>
      new AppError('INVALID_INPUT', `A batch logging request can contain at most ${limit} ${kind}. Got ${got} ${kind}. Please split up ${kind} across multiple requests and try again.`);
    if (metrics.length > LOG_BATCH_LIMITS.metrics) throw over('metrics', LOG_BATCH_LIMITS.metrics, metrics.length);
    if (params.length > LOG_BATCH_LIMITS.params) throw over('params', LOG_BATCH_LIMITS.params, params.length);
    if (tags.length > LOG_BATCH_LIMITS.tags) throw over('tags', LOG_BATCH_LIMITS.tags, tags.length);
    const total = metrics.length + params.length + tags.length;
    if (total > LOG_BATCH_LIMITS.total) throw over('total metrics, params, and tags', LOG_BATCH_LIMITS.total, total);
    if (total === 0) return;
    await this.store.logBatch(runId, { metrics, params, tags });
    this.#record(ctx, 'run.log', `run:${runId}`, { metrics: metrics.length, params: params.length, tags: tags.length });
  }

  logMetric(runId: string, metric: Metric, ctx: RequestContext): Promise<void> {
    return this.logBatch(runId, { metrics: [metric] }, ctx);
  }

  logParam(runId: string, param: KeyValue, ctx: RequestContext): Promise<void> {
    return this.logBatch(runId, { params: [param] }, ctx);
  }

  setTag(runId: string, tag: KeyValue, ctx: RequestContext): Promise<void> {
    return this.logBatch(runId, { tags: [tag] }, ctx);
  }

  async deleteTag(runId: string, key: string, ctx: RequestContext): Promise<void> {
    await this.store.deleteTag(runId, key);
    this.#record(ctx, 'run.tag.delete', `run:${runId}`, { key });
  }

  /**
   * runs/log-model: MLflow keeps the logged models' MLmodel JSON in the run tag
   * `mlflow.log-model.history` (a JSON list); the oldest entries go when the tag would overflow.
   */
  async recordLoggedModel(runId: string, modelJson: string, ctx: RequestContext): Promise<void> {
    let entry: unknown;
    try {
      entry = JSON.parse(modelJson);
    } catch {
      throw new AppError('INVALID_INPUT', "Argument 'model_json' must be a valid JSON string");
    }
    const run = await this.store.getRun(runId);
    const prior = run.data.tags.find((t) => t.key === LOGGED_MODELS_TAG)?.value;
    let history: unknown[] = [];
    try {
      history = prior ? (JSON.parse(prior) as unknown[]) : [];
    } catch {
      history = [];
    }
    history.push(entry);
    let value = JSON.stringify(history);
    while (value.length > 8000 && history.length > 1) value = JSON.stringify((history = history.slice(1)));
    if (value.length > 8000) throw new AppError('INVALID_INPUT', 'model_json is too large to record (8000 characters at most)');
    await this.store.logBatch(runId, { tags: [{ key: LOGGED_MODELS_TAG, value }] });
    this.#record(ctx, 'run.log_model', `run:${runId}`, {});
  }

  async logInputs(runId: string, datasets: DatasetInput[], ctx: RequestContext): Promise<void> {
    await this.store.logInputs(runId, datasets);
    this.#record(ctx, 'run.log_inputs', `run:${runId}`, { datasets: datasets.map((d) => ({ name: d.dataset.name, digest: d.dataset.digest })) });
  }

  async putArtifact(runId: string, path: string, data: Buffer, ctx: RequestContext): Promise<RunArtifact> {
    const artifact = await this.store.putArtifact(runId, path, data);
    this.#record(ctx, 'run.artifact.put', `run:${runId}`, { path, sha256: artifact.sha256, size: artifact.size });
    return artifact;
  }
}
