/** Domain types of the training service's records. */

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const;
export type JobState = (typeof JOB_STATES)[number];
/** States a job can be resumed from (given a checkpoint). */
export const RESUMABLE_STATES: readonly JobState[] = ['cancelled', 'interrupted', 'failed'];
export const FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

export const TRIAL_STATES = ['running', 'pruned', 'complete', 'failed', 'cancelled'] as const;
export type TrialState = (typeof TRIAL_STATES)[number];

export type JobPhase = 'queued' | 'preparing' | 'training' | 'evaluating' | 'done';

export interface JobProgress {
  phase: JobPhase;
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  /** 0..1 over the whole job (epochs and steps within the current epoch). */
  fraction: number;
}

/** Where the newest checkpoint of a job is: the worker's file, and its copy in the object store once uploaded. */
export interface CheckpointRef {
  /** Epochs completed when it was written (a mid-epoch checkpoint also has `step` > 0 in the next epoch). */
  epoch: number;
  step: number;
  path: string;
  objectKey?: string;
  sha256?: string;
  attempt: number;
}

/** One stored artifact (content-addressed key in the object store). */
export interface ArtifactRef {
  key: string;
  sha256: string;
  bytes: number;
  contentType: string;
  file: string;
}

/** What a training job was asked to do (the validated POST /train body). */
export interface JobRequest {
  dataset_version?: string;
  /** Dev/test option: an already exported dataset folder, used instead of a dataset version. */
  dataset_dir?: string;
  model: string;
  input_size?: number;
  hyperparameters: Record<string, unknown>;
  augmentation?: Record<string, unknown>;
  seed?: number;
  threshold?: { method?: string; target_sensitivity?: number };
  test_dataset_versions?: string[];
  export?: { onnx?: boolean; opset?: number };
  experiment?: string;
  register_as?: string;
  /** Data-parallel training in `processes` torchrun processes (absent: one process). */
  distributed?: { processes: number };
  /** An ensemble of these finished jobs instead of a training run (2–5 job ids; see service/ensemble.ts). */
  ensemble_of?: string[];
}

export interface JobRecord {
  id: string;
  state: JobState;
  datasetVersion: string | null;
  datasetDir: string | null;
  model: string;
  inputSize: number | null;
  experiment: string;
  request: JobRequest;
  /** Attempts started so far (1 after the first run; each resume adds one). */
  attempt: number;
  queueJobId: string | null;
  workerHost: string | null;
  workerPid: number | null;
  /** The training service process that runs the attempt (replicas on one host share pids). */
  ownerPid: number | null;
  heartbeatAt: number | null;
  progress: JobProgress | null;
  /** The newest epoch's metrics. */
  current: Record<string, unknown> | null;
  /** The worker's `started` event of the current attempt (device, threads, sizes…). */
  info: Record<string, unknown> | null;
  lastCheckpoint: CheckpointRef | null;
  artifacts: Record<string, ArtifactRef>;
  metrics: Record<string, unknown> | null;
  testMetrics: Record<string, unknown> | null;
  parity: Record<string, unknown> | null;
  threshold: number | null;
  bestEpoch: number | null;
  bestValAuc: number | null;
  imagesPerSec: number | null;
  runId: string | null;
  registered: { name: string; version: number | string; [k: string]: unknown } | null;
  error: string | null;
  createdBy: string;
  createdAt: number;
  updatedAt: number;
  attemptStartedAt: number | null;
  finishedAt: number | null;
}

/** The fields a new job is created with; {@link newJobRecord} leaves everything a run reports empty. */
export type NewJob = Pick<JobRecord, 'id' | 'datasetVersion' | 'datasetDir' | 'model' | 'inputSize' | 'experiment' | 'request' | 'queueJobId' | 'progress' | 'createdBy'>;

/** A queued job before its first attempt: no worker, metrics, artifacts or outcome yet. */
export function newJobRecord(init: NewJob, now: number): JobRecord {
  return {
    ...init,
    state: 'queued',
    attempt: 0,
    workerHost: null,
    workerPid: null,
    ownerPid: null,
    heartbeatAt: null,
    current: null,
    info: null,
    lastCheckpoint: null,
    artifacts: {},
    metrics: null,
    testMetrics: null,
    parity: null,
    threshold: null,
    bestEpoch: null,
    bestValAuc: null,
    imagesPerSec: null,
    runId: null,
    registered: null,
    error: null,
    createdAt: now,
    updatedAt: now,
    attemptStartedAt: null,
    finishedAt: null,
  };
}

export interface StudyRequest extends Omit<JobRequest, 'register_as' | 'distributed'> {
  search_space: Record<string, unknown>;
  n_trials: number;
  pruner: 'median' | 'hyperband' | 'none';
  concurrency: number;
  direction?: 'maximize' | 'minimize';
  pruner_startup_trials?: number;
  pruner_warmup_epochs?: number;
  timeout_s?: number;
}

export type StudyState = JobState;

export interface StudyRecord {
  id: string;
  state: StudyState;
  datasetVersion: string | null;
  datasetDir: string | null;
  experiment: string;
  request: StudyRequest;
  queueJobId: string | null;
  workerHost: string | null;
  workerPid: number | null;
  /** The training service process that runs the attempt (replicas on one host share pids). */
  ownerPid: number | null;
  heartbeatAt: number | null;
  best: { trial: number; value: number | null; params: Record<string, unknown> } | null;
  error: string | null;
  createdBy: string;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface TrialRecord {
  studyId: string;
  trial: number;
  state: TrialState;
  value: number | null;
  params: Record<string, unknown>;
  /** Per-epoch validation AUC (what the pruner saw). */
  history: { epoch: number; val_auc: number | null; val_loss?: number | null; train_loss?: number | null }[];
  prunedEpoch: number | null;
  bestEpoch: number | null;
  metrics: Record<string, unknown> | null;
  runId: string | null;
  error: string | null;
  updatedAt: number;
}

export interface StoredEvent {
  seq: number;
  attempt: number;
  event: string;
  data: Record<string, unknown>;
  time: number;
}

export interface EpochRecord {
  epoch: number;
  attempt: number;
  metrics: Record<string, unknown>;
  time: number;
}

export type { Page, PageRequest } from '../../core/db/page.js';
