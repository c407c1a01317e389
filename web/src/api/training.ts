import type { z } from 'zod';
import { request } from './http.js';
import type { eventView, jobView, optimizeRequestSchema, runtimeView, studyView, trainRequestSchema, trialView } from '../../../src/training/routes/schemas.js';
import { MODEL_NAMES } from '../../../src/training/service/model-names.js';

/**
 * Client of the training service. Response types are inferred from its route schemas
 * (src/training/routes/schemas.ts); the evaluation objects the schemas leave open are typed here.
 */
export { MODEL_NAMES };
export type ModelName = (typeof MODEL_NAMES)[number];

export type JobState = z.infer<typeof jobView>['state'];
export const FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface RocPoint {
  fpr: number;
  tpr: number;
  threshold: number | null;
}

export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  mean_pred: number | null;
  frac_pos: number | null;
}

/** The trainer's evaluation object (trainer/evaluate.py compute_metrics). */
export interface Evaluation {
  n?: number;
  positives?: number;
  auc?: number | null;
  auc_ci?: [number, number] | null;
  accuracy?: number | null;
  sensitivity?: number | null;
  specificity?: number | null;
  ppv?: number | null;
  npv?: number | null;
  f1?: number | null;
  threshold?: number;
  threshold_method?: string;
  confusion?: Confusion;
  roc?: RocPoint[];
  calibration?: { ece: number | null; bins: CalibrationBin[] };
  temperature?: number;
}

export interface EpochRecord {
  epoch: number;
  attempt?: number;
  train_loss?: number;
  val_loss?: number;
  val_auc?: number;
  lr?: number;
  [k: string]: unknown;
}

export type Job = Omit<z.infer<typeof jobView>, 'history' | 'metrics' | 'test_metrics'> & {
  history?: EpochRecord[];
  metrics: Evaluation | null;
  test_metrics: Record<string, Evaluation> | null;
};

export type TrainRequest = z.input<typeof trainRequestSchema>;

export type Runtime = z.infer<typeof runtimeView>;

export type Trial = z.infer<typeof trialView>;

export type Study = z.infer<typeof studyView>;


export type OptimizeRequest = z.input<typeof optimizeRequestSchema>;
export type Distribution = OptimizeRequest['search_space'][string];

export type JobEvent = z.infer<typeof eventView>;

export function runtime(): Promise<Runtime> {
  return request('training', '/train/runtime');
}

export function listJobs(): Promise<{ jobs: Job[]; next_page_token?: string }> {
  return request('training', '/train', { query: { page_size: 50 } });
}

export function getJob(id: string): Promise<Job> {
  return request('training', `/train/${encodeURIComponent(id)}`);
}

export function submitJob(body: TrainRequest): Promise<{ job_id: string; state: string }> {
  return request('training', '/train', { method: 'POST', json: body });
}

export function cancelJob(id: string): Promise<Job> {
  return request('training', `/train/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

export function resumeJob(id: string): Promise<Job> {
  return request('training', `/train/${encodeURIComponent(id)}/resume`, { method: 'POST' });
}

export function registerJob(id: string, name: string): Promise<{ job_id: string; registered: Record<string, unknown> }> {
  return request('training', `/train/${encodeURIComponent(id)}/register`, { method: 'POST', json: { name } });
}

/** Long poll: events after `after`, waiting up to `wait` seconds for one (works with auth, unlike EventSource). */
export function jobEvents(id: string, after: number, wait: number, signal?: AbortSignal): Promise<{ events: JobEvent[]; next_after: number; done: boolean; state: string | null }> {
  return request('training', `/train/${encodeURIComponent(id)}/events`, { query: { after, wait }, signal });
}

export function listStudies(): Promise<{ studies: Study[] }> {
  return request('training', '/optimize', { query: { page_size: 20 } });
}

export function getStudy(id: string): Promise<Study> {
  return request('training', `/optimize/${encodeURIComponent(id)}`);
}

export function submitStudy(body: OptimizeRequest): Promise<{ study_id: string; state: string }> {
  return request('training', '/optimize', { method: 'POST', json: body });
}

export function cancelStudy(id: string): Promise<unknown> {
  return request('training', `/optimize/${encodeURIComponent(id)}`, { method: 'DELETE' });
}
