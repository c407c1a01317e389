import { apiPath, fetchWithAuth, request } from './http.js';

/** Client of the deployment service (src/deployment/routes/schemas.ts). */

export type Label = 'PNEUMONIA' | 'NORMAL';

export interface Timings {
  decode?: number;
  preprocess: number;
  queue: number;
  inference: number;
  heatmap: number;
  total: number;
}

export interface Prediction {
  prediction_id: string;
  model: { name: string; version: string };
  variant: string;
  probability: number;
  label: Label;
  threshold: number;
  heatmap_url: string;
  heatmap_method: 'cam' | 'occlusion';
  heatmap_png_base64?: string;
  cached: boolean;
  timings_ms: Timings;
}

export interface BatchItem {
  index: number;
  filename?: string;
  hash?: string;
  prediction?: Prediction;
  error?: { code: string; message: string };
}

export interface BatchResponse {
  results: BatchItem[];
  succeeded: number;
  failed: number;
}

export interface PreprocessingInfo {
  size: number;
  mode: string;
  pad: number;
  format: string;
  hash: string;
  verified: boolean;
}

export interface LoadedModel {
  name: string;
  version: string;
  alias: string | null;
  default: boolean;
  state: 'ready' | 'retiring' | 'disposed';
  source: { kind: 'registry' | 'file'; uri: string };
  sha256: string;
  loaded_at: number;
  threshold: number;
  heatmap_method: 'cam' | 'occlusion';
  preprocessing: PreprocessingInfo;
  execution_providers: string[];
  in_flight: number;
  queue_depth: number;
  stats: { batches: number; items: number; mean_batch_size: number };
}

export interface Routing {
  model: string;
  mode: 'split' | 'shadow';
  sticky: boolean;
  variants: { name: string; version: string; weight: number }[];
}

export interface ModelsResponse {
  default_model: string;
  models: LoadedModel[];
  routing: Routing[];
}

/** One image → prediction with the heatmap PNG inline (one round trip, and it works with auth on). */
export function predict(file: File, signal?: AbortSignal): Promise<Prediction> {
  const form = new FormData();
  form.append('file', file, file.name);
  return request<Prediction>('deployment', '/predict', { method: 'POST', body: form, query: { heatmap: 'inline' }, signal });
}

/** Several images in one request; each succeeds or fails on its own. */
export function predictBatch(files: File[], signal?: AbortSignal): Promise<BatchResponse> {
  const form = new FormData();
  for (const f of files) form.append('file', f, f.name);
  return request<BatchResponse>('deployment', '/predict/batch', { method: 'POST', body: form, query: { heatmap: 'inline' }, signal });
}

export function loadedModels(): Promise<ModelsResponse> {
  return request<ModelsResponse>('deployment', '/models');
}

/** Serve a registry version (default: becomes the version requests without a model name get). */
export function loadModel(body: { name: string; version?: string; alias?: string; default?: boolean }): Promise<LoadedModel> {
  return request<LoadedModel>('deployment', '/models/load', { method: 'POST', json: body });
}

/** The heatmap overlay of a prediction (heatmap_url is already gateway-prefixed). */
export async function heatmapBlob(heatmapUrl: string): Promise<Blob> {
  const url = heatmapUrl.startsWith('/api/') ? heatmapUrl : apiPath('deployment', heatmapUrl);
  return (await fetchWithAuth(url)).blob();
}
