/** What the model registry's client offers other services (import-free: types only). */
import type { Page, PageRequest } from '../../core/db/page.js';
import type { ModelVersionView } from '../routes/schemas.js';
import type { KeyValue, Run, RunStatus } from '../store/tracking-store.js';

export type { ModelVersionView } from '../routes/schemas.js';
export type { Run, RunStatus } from '../store/tracking-store.js';

export type { Page, PageRequest } from '../../core/db/page.js';

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



/** On whose behalf a call is made: their credential travels with it over HTTP. */
export interface RegistryCallContext {
  authorization?: string;
  requestId?: string;
  /** Who is recorded as acting (in-process calls; over HTTP the credential decides). */
  actor?: { name: string; role: string };
}

/** A new version: a tracked run's ONNX artifact, or uploaded bytes, with what the trainer recorded. */
export interface RegisterVersionRequest {
  name: string;
  source: { kind: 'run'; runId: string; artifactPath: string } | { kind: 'upload'; data: Buffer; filename?: string };
  metadata?: Record<string, unknown> | null;
  description?: string;
  tags?: { key: string; value: string }[];
  datasetVersion?: string;
  /** More files kept with the version (canary.json, reference.json, evaluation.json, …). */
  extraArtifacts?: { path: string; data: Buffer; contentType?: string }[];
}

/** The model registry, as other services see it. */
export interface ModelRegistryClient {
  /** 'in-process' or the base URL it calls. */
  readonly target: string;
  /**
   * A version by number or alias ('production', 'staging', 'latest', a custom alias).
   * @throws AppError NOT_FOUND for an unknown model, version or alias.
   */
  getVersion(name: string, versionOrAlias: string | number, ctx?: RegistryCallContext): Promise<ModelVersionView>;
  /**
   * A stored file of a version ('model.onnx', 'canary.json', …); null when the version has no such file.
   * @throws AppError NOT_FOUND for an unknown model or version.
   */
  artifact(name: string, version: number, path: string, ctx?: RegistryCallContext): Promise<Buffer | null>;
  /** Registers a new version. @throws AppError INVALID_INPUT for an unservable ONNX file, NOT_FOUND for an unknown run. */
  register(request: RegisterVersionRequest, ctx?: RegistryCallContext): Promise<ModelVersionView>;
  /** Experiment tracking (MLflow-shaped runs) on the registry's tracking server. */
  readonly tracking: RunTracker;
}

/** Key under which an in-process model registry offers its client (LocalServices). */
export const MODEL_REGISTRY_LOCAL_KEY = 'model-registry.client';
