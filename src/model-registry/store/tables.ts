/** Row shapes of the model registry's tables (migration 0300-model-registry). */

export interface ExperimentRow {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  creation_time: number;
  last_update_time: number;
}

export interface KeyValueRow {
  key: string;
  value: string;
}

export interface RunRow {
  run_id: string;
  experiment_id: string;
  run_name: string;
  user_id: string;
  status: string;
  start_time: number;
  end_time: number | null;
  artifact_uri: string;
  lifecycle_stage: string;
  deleted_time: number | null;
}

export interface MetricRow {
  run_id: string;
  key: string;
  step: number;
  timestamp: number;
  value: number;
  is_nan: number;
}

export interface LatestMetricRow extends MetricRow {
  experiment_id: string;
}

export interface RunInputRow {
  run_id: string;
  name: string;
  digest: string;
  source_type: string;
  source: string;
  schema: string | null;
  profile: string | null;
  tags: string;
  created_at: number;
}

export interface RunArtifactRow {
  run_id: string;
  path: string;
  object_key: string;
  sha256: string;
  size: number;
  created_at: number;
}

export interface RegisteredModelRow {
  name: string;
  description: string;
  user_id: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
}

export interface AliasRow {
  name: string;
  alias: string;
  version: number;
  updated_by: string;
  updated_at: number;
}

export interface ModelVersionRow {
  name: string;
  version: number;
  creation_timestamp: number;
  last_updated_timestamp: number;
  user_id: string;
  current_stage: string;
  description: string;
  source: string;
  run_id: string | null;
  run_link: string | null;
  status: string;
  status_message: string | null;
  deleted_at: number | null;
  onnx_key: string | null;
  onnx_sha256: string | null;
  onnx_bytes: number | null;
  input_name: string | null;
  input_size: number | null;
  has_features: number;
  threshold: number | null;
  threshold_method: string | null;
  preprocessing: string | null;
  preprocessing_hash: string | null;
  dataset_version: string | null;
  code_version: string | null;
  parent_name: string | null;
  parent_version: number | null;
  val_auc: number | null;
  metrics: string | null;
  metadata: string | null;
  gate: string | null;
}

export interface VersionArtifactRow {
  name: string;
  version: number;
  path: string;
  object_key: string;
  sha256: string;
  size: number;
  content_type: string;
}

export interface StageEventRow {
  id: string;
  name: string;
  version: number;
  from_stage: string;
  to_stage: string;
  outcome: string;
  actor: string;
  forced: number;
  reason: string | null;
  verdict: string | null;
  created_at: number;
}

export interface RegistryTables {
  experiments: ExperimentRow;
  experiment_tags: KeyValueRow & { experiment_id: string };
  runs: RunRow;
  run_params: KeyValueRow & { run_id: string };
  run_tags: KeyValueRow & { run_id: string };
  metric_history: MetricRow;
  latest_metrics: LatestMetricRow;
  run_inputs: RunInputRow;
  run_artifacts: RunArtifactRow;
  registered_models: RegisteredModelRow;
  registered_model_tags: KeyValueRow & { name: string };
  registered_model_aliases: AliasRow;
  model_versions: ModelVersionRow;
  model_version_tags: KeyValueRow & { name: string; version: number };
  model_version_artifacts: VersionArtifactRow;
  model_stage_events: StageEventRow;
}
