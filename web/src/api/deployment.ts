import type { z } from 'zod';
import { apiPath, fetchWithAuth, request } from './http.js';
import type { batchItemSchema, batchResponseSchema, modelInfoSchema, modelsResponse, predictionSchema, routingSchema } from '../../../src/deployment/routes/schemas.js';

/** Client of the deployment service; response types are inferred from its route schemas (src/deployment/routes/schemas.ts). */

export type Prediction = z.infer<typeof predictionSchema>;
export type Label = Prediction['label'];
export type Timings = Prediction['timings_ms'];
export type BatchItem = z.infer<typeof batchItemSchema>;
export type BatchResponse = z.infer<typeof batchResponseSchema>;
export type ModelsResponse = z.infer<typeof modelsResponse>;
export type LoadedModel = z.infer<typeof modelInfoSchema>;
export type PreprocessingInfo = LoadedModel['preprocessing'];
export type Routing = z.infer<typeof routingSchema>;

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
