import type { z } from 'zod';
import { request } from './http.js';
import type {
  calibrateResult,
  comparison,
  gateVerdict,
  lineage as lineageSchema,
  modelDetail,
  modelSummary,
  modelVersionView,
  stageEvent,
  stageResult,
} from '../../../src/model-registry/routes/schemas.js';
import { describeTrainedOn, type EvaluationSummary, type LungFieldReport, type ModelCard } from '../../../src/model-registry/service/model-card-types.js';
import { STAGES, type Stage } from '../../../src/model-registry/store/stages.js';

/**
 * Client of the model registry's own API. Response types are inferred from its route schemas
 * (src/model-registry/routes/schemas.ts); the model card and the stages are the registry's own: shared, not restated.
 */
export { describeTrainedOn, type EvaluationSummary, type LungFieldReport, type ModelCard };
export { STAGES, type Stage };

export type GateVerdict = z.infer<typeof gateVerdict>;
export type ModelVersion = z.infer<typeof modelVersionView>;
export type ModelSummary = z.infer<typeof modelSummary>;
export type StageEvent = z.infer<typeof stageEvent>;
export type ModelDetail = z.infer<typeof modelDetail>;
export type Comparison = z.infer<typeof comparison>;
export type ComparedVersion = Comparison['versions'][number];
export type Lineage = z.infer<typeof lineageSchema>;
export type StageResult = z.infer<typeof stageResult>;

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

/** Measures where the version's heatmaps fall relative to the lung fields on its validation split (kept on the version). */
export function measureLungFields(name: string, version: number): Promise<LungFieldReport> {
  return request('model-registry', `${m(name)}/versions/${version}/lung-fields`, { method: 'POST' });
}

export type CalibrateResult = z.infer<typeof calibrateResult>;

/**
 * Site calibration of a version: `body` is FormData (image parts named NORMAL / PNEUMONIA and the
 * option fields) or JSON {dataset_version, split?, method, target_sensitivity, min_cases, ci_method, promote}.
 */
export function calibrate(name: string, version: number, body: FormData | Record<string, unknown>): Promise<CalibrateResult> {
  const path = `${m(name)}/versions/${version}/calibrate`;
  return body instanceof FormData ? request('model-registry', path, { method: 'POST', body }) : request('model-registry', path, { method: 'POST', json: body });
}
