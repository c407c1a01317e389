import os from 'node:os';
import type { JobRequest, StudyRequest } from '../store/types.js';

/** Worker threads: the machine's cores shared between the jobs that may run at once. */
export function workerThreads(concurrency: number): number {
  return Math.max(1, Math.floor(os.availableParallelism() / Math.max(1, concurrency)));
}

/** The worker's default hyperparameters.batch_size (trainer/protocol.py). */
export const DEFAULT_BATCH_SIZE = 32;

/** Processes of one job (its `distributed.processes`, else 1). */
export function jobProcesses(request: JobRequest): number {
  return request.distributed?.processes ?? 1;
}

/** Torch threads per process: a job's share of the cores split between its processes, so they do not oversubscribe them. */
export function threadsPerProcess(jobThreads: number, processes: number): number {
  return Math.max(1, Math.floor(jobThreads / Math.max(1, processes)));
}

export interface SpecPlacement {
  jobId: string;
  datasetDir: string;
  outputDir: string;
  threads: number;
  resumeFrom?: string | null;
  testDatasetDirs?: { name: string; dataset_dir: string }[];
}

/** The worker's job spec (trainer/README.md) for a training request. */
export function buildJobSpec(request: JobRequest, place: SpecPlacement): Record<string, unknown> {
  const spec: Record<string, unknown> = {
    job_id: place.jobId,
    dataset_dir: place.datasetDir,
    output_dir: place.outputDir,
    model: request.model,
    seed: request.seed ?? 42,
    threads: place.threads,
    resume_from: place.resumeFrom ?? null,
    hyperparameters: request.hyperparameters ?? {},
  };
  if (request.input_size !== undefined) spec.input_size = request.input_size;
  if (request.augmentation) spec.augmentation = request.augmentation;
  if (request.threshold) spec.threshold = request.threshold;
  if (request.export) spec.export = request.export;
  if (place.testDatasetDirs?.length) spec.test_dataset_dirs = place.testDatasetDirs;
  return spec;
}

/** The worker's study spec: a job spec plus the `study` block. Trials skip ONNX export unless asked. */
export function buildStudySpec(request: StudyRequest, place: SpecPlacement): Record<string, unknown> {
  const base = buildJobSpec({ ...request, export: { onnx: false, ...request.export } }, { ...place, resumeFrom: null });
  const study: Record<string, unknown> = {
    n_trials: request.n_trials,
    pruner: request.pruner,
    concurrency: request.concurrency,
    search_space: request.search_space,
    direction: request.direction ?? 'maximize',
    study_name: place.jobId,
  };
  if (request.pruner_startup_trials !== undefined) study.pruner_startup_trials = request.pruner_startup_trials;
  if (request.pruner_warmup_epochs !== undefined) study.pruner_warmup_epochs = request.pruner_warmup_epochs;
  if (request.timeout_s !== undefined) study.timeout_s = request.timeout_s;
  return { ...base, study };
}

/** Flat MLflow params of a request (hyper-parameters as `hp.<name>`, augmentation as `aug.<name>`). */
export function trackingParams(request: JobRequest, extra: Record<string, unknown> = {}): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {
    model: request.model,
    input_size: request.input_size ?? null,
    seed: request.seed ?? 42,
  };
  for (const [k, v] of Object.entries(request.hyperparameters ?? {})) out[`hp.${k}`] = scalar(v);
  for (const [k, v] of Object.entries(request.augmentation ?? {})) out[`aug.${k}`] = scalar(v);
  if (request.distributed) out['distributed.processes'] = request.distributed.processes;
  if (request.threshold?.method) out['threshold.method'] = request.threshold.method;
  if (request.threshold?.target_sensitivity !== undefined) out['threshold.target_sensitivity'] = request.threshold.target_sensitivity;
  for (const [k, v] of Object.entries(extra)) out[k] = scalar(v);
  return out;
}

function scalar(v: unknown): string | number | boolean | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return JSON.stringify(v);
}
