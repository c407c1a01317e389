import type { Page, PageRequest } from './paging.js';

/**
 * Experiment tracking: experiments, runs, their params, tags, metrics (full history plus the
 * latest value per key), dataset inputs and artifacts. Entities use MLflow's field names so the
 * REST layer can hand them out unchanged. Missing things raise `NOT_FOUND`, bad arguments
 * `INVALID_INPUT`, duplicates `ALREADY_EXISTS` (AppError), with MLflow's messages.
 */

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export const RUN_STATUSES: readonly RunStatus[] = ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'];
export type LifecycleStage = 'active' | 'deleted';
export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';

export interface KeyValue {
  key: string;
  value: string;
}

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: LifecycleStage;
  creation_time: number;
  last_update_time: number;
  tags: KeyValue[];
}

/** A metric point; `value` may be NaN or ±Infinity. */
export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export interface RunInfo {
  run_id: string;
  /** Deprecated MLflow alias of run_id, still read by older clients. */
  run_uuid: string;
  experiment_id: string;
  run_name: string;
  user_id: string;
  status: RunStatus;
  start_time: number;
  end_time?: number;
  artifact_uri: string;
  lifecycle_stage: LifecycleStage;
}

export interface Dataset {
  name: string;
  digest: string;
  source_type: string;
  source: string;
  schema?: string;
  profile?: string;
}

export interface DatasetInput {
  tags: KeyValue[];
  dataset: Dataset;
}

export interface Run {
  info: RunInfo;
  data: { metrics: Metric[]; params: KeyValue[]; tags: KeyValue[] };
  inputs: { dataset_inputs: DatasetInput[] };
}

export interface RunArtifact {
  run_id: string;
  path: string;
  object_key: string;
  sha256: string;
  size: number;
}

export interface ArtifactListing {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

export interface CreateExperimentInput {
  name: string;
  artifactLocation?: string;
  tags?: KeyValue[];
}

export interface CreateRunInput {
  experimentId: string;
  userId: string;
  runName?: string;
  startTime?: number;
  tags?: KeyValue[];
}

export interface UpdateRunInput {
  status?: RunStatus;
  endTime?: number;
  runName?: string;
}

export interface LogBatchInput {
  metrics?: Metric[];
  params?: KeyValue[];
  tags?: KeyValue[];
}

export interface SearchRunsQuery extends PageRequest {
  experimentIds: string[];
  filter?: string;
  viewType?: ViewType;
  /** e.g. ['metrics.auc DESC', 'attributes.start_time']; default start_time DESC, run_id. */
  orderBy?: string[];
}

export interface SearchExperimentsQuery extends PageRequest {
  filter?: string;
  viewType?: ViewType;
  orderBy?: string[];
}

/** MLflow's limits for one runs/log-batch request. */
export const LOG_BATCH_LIMITS = { metrics: 1000, params: 100, tags: 100, total: 1000 } as const;
/** Largest page runs/search answers (MLflow's threshold). */
export const SEARCH_RUNS_MAX_RESULTS = 50_000;
export const DEFAULT_EXPERIMENT_ID = '0';

export interface TrackingStore {
  /** Creates the 'Default' experiment (id '0') unless it exists; idempotent. */
  ensureDefaultExperiment(): Promise<void>;

  /** Creates an experiment and returns its id. ALREADY_EXISTS when the name is taken (even by a deleted one). */
  createExperiment(input: CreateExperimentInput): Promise<string>;

  /** The experiment with its tags. NOT_FOUND when unknown. */
  getExperiment(experimentId: string): Promise<Experiment>;

  /** The experiment of that name. NOT_FOUND when unknown. */
  getExperimentByName(name: string): Promise<Experiment>;

  /** Experiments matching an MLflow filter (`name LIKE 'x%'`, `tags.k = 'v'`), paged; default order creation_time DESC. */
  searchExperiments(query: SearchExperimentsQuery): Promise<Page<Experiment>>;

  /** Starts a run (status RUNNING) in an active experiment. NOT_FOUND for an unknown experiment, INVALID_INPUT for a deleted one. */
  createRun(input: CreateRunInput): Promise<Run>;

  /** The run with its latest metrics, params, tags and dataset inputs. NOT_FOUND when unknown. */
  getRun(runId: string): Promise<Run>;

  /** Updates status, end time and/or name; returns the new info. NOT_FOUND when unknown. */
  updateRun(runId: string, input: UpdateRunInput): Promise<RunInfo>;

  /** Marks a run deleted (lifecycle_stage 'deleted'); its data stays. NOT_FOUND when unknown. */
  deleteRun(runId: string): Promise<void>;

  /** Brings a deleted run back. NOT_FOUND when unknown. */
  restoreRun(runId: string): Promise<void>;

  /**
   * Runs of the given experiments matching the filter, ordered and paged. Metric filters and
   * order_by join `latest_metrics` through its (experiment_id, key, value) index.
   * INVALID_INPUT for a malformed filter, order_by or page token.
   */
  searchRuns(query: SearchRunsQuery): Promise<Page<Run>>;

  /**
   * Logs metrics (appended to the history; the latest value per key kept apart), params
   * (immutable: a different value for a logged key is INVALID_INPUT) and tags (overwritten), in
   * one transaction. The run must be active (INVALID_INPUT otherwise), NOT_FOUND when unknown.
   * Size limits are the caller's (see LOG_BATCH_LIMITS).
   */
  logBatch(runId: string, input: LogBatchInput): Promise<void>;

  /** Removes a tag. NOT_FOUND when the run or the tag is unknown. */
  deleteTag(runId: string, key: string): Promise<void>;

  /** Records dataset inputs (idempotent per name + digest). NOT_FOUND when the run is unknown. */
  logInputs(runId: string, datasets: DatasetInput[]): Promise<void>;

  /** Every logged point of one metric, by step then timestamp, paged. NOT_FOUND when the run is unknown. */
  getMetricHistory(runId: string, key: string, page?: PageRequest): Promise<Page<Metric>>;

  /**
   * Stores bytes as a run artifact at a relative path: the bytes are content-addressed in the
   * object store, the row maps path → key. Overwrites the path. INVALID_INPUT for a bad path.
   */
  putArtifact(runId: string, path: string, data: Buffer): Promise<RunArtifact>;

  /** The artifact row at that path. NOT_FOUND when absent. */
  getArtifact(runId: string, path: string): Promise<RunArtifact>;

  /** Direct children (files and folders) of a folder of a run's artifacts ('' = root). */
  listArtifacts(runId: string, folder?: string): Promise<ArtifactListing[]>;

  /** Every object key any run artifact references (for garbage collection). */
  referencedObjectKeys(): Promise<Set<string>>;
}
