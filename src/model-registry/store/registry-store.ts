import type { Page, PageRequest } from './paging.js';
import type { Stage } from './stages.js';
import type { KeyValue } from './tracking-store.js';

/**
 * The model registry: registered models, their numbered versions (with what deployment needs to
 * serve them: ONNX artifact, input size, threshold, preprocessing), aliases, stages and the record
 * of every stage change (including refused promotions). Missing things raise `NOT_FOUND`,
 * duplicates `ALREADY_EXISTS`, bad arguments `INVALID_INPUT` (AppError), with MLflow's messages.
 * Soft-deleted versions are invisible unless `includeDeleted` is asked for.
 */

export { STAGES, type Stage } from './stages.js';
/** The aliases that mirror the two serving stages. */
export const STAGE_ALIAS: Readonly<Partial<Record<Stage, string>>> = { Staging: 'staging', Production: 'production' };

export interface OnnxArtifactRef {
  key: string;
  sha256: string;
  bytes: number;
}

/** The promotion gate's decision, stored on the version and in the stage event. */
export interface GateVerdict {
  passed: boolean;
  /** true when an admin overrode a failed gate. */
  forced: boolean;
  margin: number;
  candidate_auc: number | null;
  production_version: number | null;
  production_auc: number | null;
  /** candidate_auc - production_auc, when both are known. */
  delta: number | null;
  message: string;
  decided_by: string;
  decided_at: number;
  reason?: string;
  /** The servability check: a canary load in the deployment service before the alias moves. */
  servability?: ServabilityVerdict;
  /** What the AUCs were measured on (absent in verdicts recorded before site calibration existed: validation). */
  basis?: { kind: 'validation' | 'site'; site_data: string | null; n: number | null };
}

export interface ServabilityVerdict {
  /** false when no canary ran (XRAY_PROMOTION_CANARY=off, the shipped model at first start, or a forced promotion while the deployment was unreachable). */
  checked: boolean;
  servable: boolean | null;
  message: string;
  /** Where the canary ran: 'in-process' or the deployment's URL. */
  target: string | null;
  checks: { name: string; passed: boolean; message: string }[];
  reference: { n: number; max_abs_diff: number; tolerance: number } | null;
}

export interface ModelVersionRecord {
  name: string;
  version: number;
  creation_timestamp: number;
  last_updated_timestamp: number;
  user_id: string;
  current_stage: Stage;
  description: string;
  source: string;
  run_id: string | null;
  run_link: string | null;
  status: string;
  status_message: string | null;
  tags: KeyValue[];
  aliases: string[];
  deleted_at: number | null;
  onnx: OnnxArtifactRef | null;
  input_name: string | null;
  input_size: number | null;
  has_features: boolean;
  threshold: number | null;
  threshold_method: string | null;
  preprocessing: unknown;
  preprocessing_hash: string | null;
  dataset_version: string | null;
  code_version: string | null;
  parent: { name: string; version: number } | null;
  val_auc: number | null;
  /** Validation evaluation (auc, auc_ci, sensitivity, …, confusion, roc). */
  metrics: Record<string, unknown> | null;
  /** What the trainer recorded (model.json), or what was read from the ONNX file. */
  metadata: Record<string, unknown> | null;
  gate: GateVerdict | null;
}

export interface RegisteredModelRecord {
  name: string;
  description: string;
  user_id: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  tags: KeyValue[];
  aliases: { alias: string; version: number }[];
  /** The newest version in each stage (MLflow's latest_versions). */
  latest_versions: ModelVersionRecord[];
}

export interface VersionArtifact {
  path: string;
  object_key: string;
  sha256: string;
  size: number;
  content_type: string;
}

export interface NewModelVersion {
  name: string;
  userId: string;
  source: string;
  runId?: string | null;
  runLink?: string | null;
  description?: string;
  tags?: KeyValue[];
  onnx?: OnnxArtifactRef | null;
  inputName?: string | null;
  inputSize?: number | null;
  hasFeatures?: boolean;
  threshold?: number | null;
  thresholdMethod?: string | null;
  preprocessing?: unknown;
  preprocessingHash?: string | null;
  datasetVersion?: string | null;
  codeVersion?: string | null;
  parent?: { name: string; version: number } | null;
  valAuc?: number | null;
  metrics?: Record<string, unknown> | null;
  metadata?: Record<string, unknown> | null;
  artifacts?: VersionArtifact[];
}

export interface StageEvent {
  id: string;
  name: string;
  version: number;
  from_stage: Stage;
  to_stage: Stage;
  outcome: 'applied' | 'refused';
  actor: string;
  forced: boolean;
  reason: string | null;
  verdict: GateVerdict | null;
  created_at: number;
}

/** One atomic stage change: the version's new stage, who else leaves that stage, alias moves. */
export interface StageChange {
  name: string;
  version: number;
  stage: Stage;
  /** Other versions pushed out of the target stage, and where they go. */
  demote: { version: number; stage: Stage }[];
  /** Aliases to point at a version (alias → version). */
  setAliases: Record<string, number>;
  /** Aliases to remove. */
  deleteAliases: string[];
  actor: string;
  /** Stored on the version when present (promotions to Production). */
  verdict: GateVerdict | null;
  event: Omit<StageEvent, 'id' | 'created_at'>;
}

export interface SearchQuery extends PageRequest {
  filter?: string;
  orderBy?: string[];
}

export interface RegistryStore {
  /** Creates a registered model. ALREADY_EXISTS when the name is taken; INVALID_INPUT for a bad name. */
  createRegisteredModel(input: { name: string; description?: string; tags?: KeyValue[]; userId: string }): Promise<RegisteredModelRecord>;

  /** Creates the registered model unless it exists (used by register); idempotent. */
  ensureRegisteredModel(name: string, userId: string): Promise<void>;

  /** The model with tags, aliases and latest version per stage. NOT_FOUND when unknown. */
  getRegisteredModel(name: string): Promise<RegisteredModelRecord>;

  /** Models matching `name LIKE '%x%'` / `tags.k = 'v'`, ordered (default name ASC), paged. */
  searchRegisteredModels(query: SearchQuery): Promise<Page<RegisteredModelRecord>>;

  /** Changes the description. NOT_FOUND when unknown. */
  updateRegisteredModel(name: string, input: { description?: string }): Promise<RegisteredModelRecord>;

  /** Renames a model and everything hanging off it. NOT_FOUND / ALREADY_EXISTS. */
  renameRegisteredModel(name: string, newName: string): Promise<RegisteredModelRecord>;

  /** Removes the model, its tags and aliases and soft-deletes its versions; returns their numbers. NOT_FOUND when unknown. */
  deleteRegisteredModel(name: string): Promise<number[]>;

  /** Sets (overwrites) a model tag. NOT_FOUND when the model is unknown. */
  setRegisteredModelTag(name: string, tag: KeyValue): Promise<void>;

  /** Removes a model tag. NOT_FOUND when the model or tag is unknown. */
  deleteRegisteredModelTag(name: string, key: string): Promise<void>;

  /** Adds the next version number (numbers are never reused) with stage None, status READY. NOT_FOUND when the model is unknown. */
  createModelVersion(input: NewModelVersion): Promise<ModelVersionRecord>;

  /** One version. NOT_FOUND when unknown or soft-deleted (unless includeDeleted). */
  getModelVersion(name: string, version: number, options?: { includeDeleted?: boolean }): Promise<ModelVersionRecord>;

  /** The highest-numbered live version. NOT_FOUND when the model has none. */
  getLatestVersion(name: string): Promise<ModelVersionRecord>;

  /** Versions matching `name = 'x'`, `run_id = '…'`, `tags.k = 'v'`…, ordered (default name ASC, version DESC), paged. */
  searchModelVersions(query: SearchQuery & { includeDeleted?: boolean }): Promise<Page<ModelVersionRecord>>;

  /** Live versions of a model currently in a stage. */
  versionsInStage(name: string, stage: Stage): Promise<ModelVersionRecord[]>;

  /** Changes the description. NOT_FOUND when unknown. */
  updateModelVersion(name: string, version: number, input: { description?: string }): Promise<ModelVersionRecord>;

  /** Sets (overwrites) a version tag. NOT_FOUND when the version is unknown. */
  setModelVersionTag(name: string, version: number, tag: KeyValue): Promise<void>;

  /** Removes a version tag. NOT_FOUND when the version or tag is unknown. */
  deleteModelVersionTag(name: string, version: number, key: string): Promise<void>;

  /** Applies a stage change and records its event, in one transaction; returns the changed version. */
  applyStageChange(change: StageChange): Promise<ModelVersionRecord>;

  /** Records a stage event without changing anything (a refused promotion). */
  recordStageEvent(event: Omit<StageEvent, 'id' | 'created_at'>): Promise<StageEvent>;

  /** Stage events of a model (one version when given), newest first. */
  listStageEvents(name: string, version?: number): Promise<StageEvent[]>;

  /** Points an alias at a live version. NOT_FOUND when the version is unknown. */
  setAlias(name: string, alias: string, version: number, actor: string): Promise<void>;

  /** Removes an alias; returns the version it pointed at. NOT_FOUND when absent. */
  deleteAlias(name: string, alias: string): Promise<number>;

  /** The version an alias points at. NOT_FOUND when absent. */
  getAlias(name: string, alias: string): Promise<number>;

  /** Hides a version (rows and artifacts stay) and drops its aliases; returns the aliases it held. NOT_FOUND when unknown. */
  softDeleteModelVersion(name: string, version: number): Promise<string[]>;

  /** Removes a version's rows (deleted or not); returns its artifact rows so the caller can drop unreferenced bytes. */
  hardDeleteModelVersion(name: string, version: number): Promise<VersionArtifact[]>;

  /** Files stored for a version (model.onnx, model.json, …). */
  listVersionArtifacts(name: string, version: number): Promise<VersionArtifact[]>;

  /** One file of a version. NOT_FOUND when absent. */
  getVersionArtifact(name: string, version: number, path: string): Promise<VersionArtifact>;

  /** Every object key a version (live or soft-deleted) references. */
  referencedObjectKeys(): Promise<Set<string>>;
}
