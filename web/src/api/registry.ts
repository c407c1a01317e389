import { request } from './http.js';
import type { Confusion, RocPoint } from './training.js';

/** Client of the model registry's own API (src/model-registry/routes/schemas.ts). */

// The model card and its evaluation rows are the registry's own documents: shared, not restated.
import type { EvaluationSummary, ModelCard } from '../../../src/model-registry/service/model-card-types.js';
export type { EvaluationSummary, ModelCard };

export type Stage = 'None' | 'Staging' | 'Production' | 'Archived';
export const STAGES: readonly Stage[] = ['None', 'Staging', 'Production', 'Archived'];

export interface GateVerdict {
  passed: boolean;
  forced: boolean;
  margin: number;
  candidate_auc: number | null;
  production_version: number | null;
  production_auc: number | null;
  delta: number | null;
  message: string;
  decided_by: string;
  decided_at: number;
  reason?: string;
}

export interface ModelVersion {
  name: string;
  version: number;
  stage: Stage;
  aliases: string[];
  description: string;
  created: number;
  updated: number;
  user_id: string;
  source: string;
  run_id: string | null;
  status: string;
  deleted: boolean;
  onnx: { key: string; sha256: string; bytes: number } | null;
  input_size: number | null;
  has_features: boolean;
  threshold: number | null;
  threshold_method: string | null;
  preprocessing_hash: string | null;
  dataset_version: string | null;
  code_version: string | null;
  parent: { name: string; version: number } | null;
  val_auc: number | null;
  metrics: Record<string, unknown> | null;
  gate: GateVerdict | null;
}

export interface ModelSummary {
  name: string;
  description: string;
  created: number;
  updated: number;
  aliases: { alias: string; version: number }[];
  latest_version: number | null;
  production: { version: number; val_auc: number | null } | null;
  staging: { version: number; val_auc: number | null } | null;
}

export interface StageEvent {
  id: string;
  version: number;
  from_stage: string;
  to_stage: string;
  outcome: string;
  actor: string;
  forced: boolean;
  reason: string | null;
  verdict: GateVerdict | null;
  created_at: number;
}

export interface ModelDetail {
  model: { name: string; description: string; created: number; updated: number; user_id: string; aliases: { alias: string; version: number }[] };
  versions: ModelVersion[];
  stage_events: StageEvent[];
}

export interface ComparedVersion {
  version: number;
  stage: string;
  aliases: string[];
  created: number;
  run_id: string | null;
  dataset_version: string | null;
  preprocessing_hash: string | null;
  threshold: number | null;
  threshold_method: string | null;
  metrics: EvaluationSummary | null;
  test_metrics: EvaluationSummary[];
  confusion: Confusion | null;
  roc: RocPoint[];
  params: Record<string, string>;
}

export interface Comparison {
  name: string;
  versions: ComparedVersion[];
  params_diff: Record<string, (string | null)[]>;
  metric_deltas: { version: number; against: number; deltas: Record<string, number | null> }[];
}

export interface Lineage {
  model: { name: string; version: number };
  run: { run_id: string; run_name: string; status: string; start_time: number; end_time: number | null } | null;
  dataset_version: string | null;
  preprocessing: { hash: string | null; spec: unknown };
  code_version: string | null;
  parents: { name: string; version: number; onnx_sha256: string | null; dataset_version: string | null; deleted: boolean }[];
  artifacts: { path: string; sha256: string; size: number }[];
  chain: { kind: string; id: string; details: Record<string, unknown> }[];
}

export interface StageResult {
  model_version: ModelVersion;
  gate: GateVerdict | null;
  changed: boolean;
  demoted: { version: number; stage: string }[];
}

const m = (name: string) => `/models/${encodeURIComponent(name)}`;

export function listModels(): Promise<{ models: ModelSummary[] }> {
  return request('model-registry', '/models', { query: { page_size: 200 } });
}

export function getModel(name: string): Promise<ModelDetail> {
  return request('model-registry', m(name));
}

export function compare(name: string, versions: number[]): Promise<Comparison> {
  return request('model-registry', '/models/compare', { query: { name, versions: versions.join(',') } });
}

export function setStage(name: string, body: { version: number; stage: Stage; force?: boolean; reason?: string }): Promise<StageResult> {
  return request('model-registry', `${m(name)}/stage`, { method: 'POST', json: body });
}

export function lineage(name: string, version: number): Promise<Lineage> {
  return request('model-registry', `${m(name)}/versions/${version}/lineage`);
}

export function card(name: string, version: number): Promise<ModelCard> {
  return request('model-registry', `${m(name)}/versions/${version}/card`);
}
