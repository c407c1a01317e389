import { request } from './http.js';

/** Client of the training service (src/training/routes/schemas.ts). */

export const MODEL_NAMES = ['compact_cnn', 'compact_resnet', 'efficientnet_b0', 'efficientnet_b1', 'efficientnet_b2', 'efficientnet_b3', 'efficientnet_b4', 'resnet18', 'resnet50', 'densenet121'] as const;

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
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

export interface Job {
  job_id: string;
  state: JobState;
  model: string;
  input_size: number | null;
  dataset_version: string | null;
  experiment: string;
  attempt: number;
  progress: { phase: string; epoch: number; epochs: number; step: number; steps: number; fraction: number } | null;
  current: Record<string, unknown> | null;
  history?: EpochRecord[];
  eta_seconds: number | null;
  images_per_sec: number | null;
  artifacts: Record<string, { key: string; sha256: string; bytes: number; content_type: string; file: string }>;
  metrics: Evaluation | null;
  test_metrics: Record<string, Evaluation> | null;
  threshold: number | null;
  best_epoch: number | null;
  best_val_auc: number | null;
  last_checkpoint: { epoch: number; step: number; attempt: number; stored: boolean } | null;
  run_id: string | null;
  registered: Record<string, unknown> | null;
  error: string | null;
  request: Record<string, unknown>;
  created_by: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

export interface TrainRequest {
  dataset_version?: string;
  model?: string;
  input_size?: number;
  hyperparameters?: { epochs?: number; batch_size?: number; lr?: number; weight_decay?: number; early_stopping_patience?: number | null };
  seed?: number;
  register_as?: string;
  experiment?: string;
}

export interface Runtime {
  available: boolean;
  python: string | null;
  torch: string | null;
  optuna: string | null;
  runner: string;
  tracking: string;
  error: string | null;
}

export interface Trial {
  trial: number;
  state: string;
  value: number | null;
  params: Record<string, unknown>;
  history: Record<string, unknown>[];
  pruned_epoch: number | null;
  best_epoch: number | null;
  error: string | null;
}

export interface Study {
  study_id: string;
  state: string;
  dataset_version: string | null;
  experiment: string;
  n_trials: number;
  pruner: string;
  concurrency: number;
  search_space: Record<string, unknown>;
  best: { trial: number; value: number | null; params: Record<string, unknown> } | null;
  trials?: Trial[];
  error: string | null;
  created_by: string;
  created_at: string;
  finished_at: string | null;
}

export type Distribution =
  | { type: 'float'; low: number; high: number; log?: boolean }
  | { type: 'int'; low: number; high: number; step?: number }
  | { type: 'categorical'; choices: (string | number | boolean | null)[] };

export interface OptimizeRequest extends Omit<TrainRequest, 'register_as'> {
  search_space: Record<string, Distribution>;
  n_trials?: number;
  pruner?: 'median' | 'hyperband' | 'none';
}

export interface JobEvent {
  seq: number;
  attempt: number;
  event: string;
  time: string;
  data: Record<string, unknown>;
}

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
