import { existsSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '../../core/errors.js';
import type { ObjectStore } from '../../core/objects/index.js';
import type { TrainingStore } from '../store/training-store.js';
import type { JobRecord, JobRequest } from '../store/types.js';
import { fetchToFile } from './artifacts.js';

/**
 * Ensemble jobs: a training job that trains nothing and combines 2–5 finished jobs into one
 * served model (trainer/ensemble.py: mean of the members' raw logits, temperature and threshold
 * fitted on val, one ONNX graph with the members' feature maps concatenated).
 */
export const ENSEMBLE_MODEL = 'ensemble';
export const ENSEMBLE_COMBINE = 'mean-logit';
export const MIN_MEMBERS = 2;
export const MAX_MEMBERS = 5;

/** What a checked ensemble request trains on: its members' dataset and input size. */
export interface EnsemblePlan {
  members: JobRecord[];
  datasetVersion: string | null;
  datasetDir: string | null;
  inputSize: number | null;
}

const short = (v: string | null) => (v ? `${v.slice(0, 12)}…` : 'none');

/** Where a succeeded member keeps its end-of-training checkpoint: the worker's file and/or the stored copy. */
function checkpointOf(job: JobRecord): { path: string | null; objectKey: string | null } {
  const ck = job.lastCheckpoint;
  return { path: ck?.path ?? null, objectKey: ck?.objectKey ?? job.artifacts.checkpoint?.key ?? null };
}

/** A member job that exists and succeeded (checked when the ensemble is submitted, and again when it runs). */
async function succeededMember(store: TrainingStore, id: string): Promise<JobRecord> {
  const job = await store.getJob(id);
  if (!job) throw new AppError('NOT_FOUND', `ensemble member: training job '${id}' does not exist`);
  if (job.state !== 'succeeded') throw new AppError('CONFLICT', `ensemble member '${id}' is ${job.state}; only succeeded jobs can be combined`);
  return job;
}

/**
 * Checks an ensemble request against its members: every member exists, succeeded, is not an
 * ensemble itself, has a checkpoint, and all share the dataset (version or folder, hence the
 * preprocessing) and the input size; an explicit dataset or input size must be theirs.
 * @throws AppError NOT_FOUND (unknown member), CONFLICT (member not succeeded / without checkpoint),
 *   INVALID_INPUT (bad combination, training options on an ensemble, mismatched members or dataset).
 */
export async function planEnsemble(store: TrainingStore, request: JobRequest): Promise<EnsemblePlan> {
  const ids = request.ensemble_of ?? [];
  if (ids.length < MIN_MEMBERS || ids.length > MAX_MEMBERS) {
    throw new AppError('INVALID_INPUT', `ensemble_of: an ensemble combines ${MIN_MEMBERS} to ${MAX_MEMBERS} finished training jobs, got ${ids.length}`);
  }
  if (new Set(ids).size !== ids.length) throw new AppError('INVALID_INPUT', 'ensemble_of: each job may be listed once');
  const trainingOnly = [
    request.distributed ? 'distributed' : null,
    request.augmentation ? 'augmentation' : null,
    Object.keys(request.hyperparameters ?? {}).length ? 'hyperparameters' : null,
  ].filter((k): k is string => k !== null);
  if (trainingOnly.length) {
    throw new AppError('INVALID_INPUT', `an ensemble job trains nothing: drop ${trainingOnly.join(', ')} (its members' settings are what they were trained with)`);
  }
  const members: JobRecord[] = [];
  for (const id of ids) {
    const job = await succeededMember(store, id);
    if (job.request.ensemble_of?.length) throw new AppError('INVALID_INPUT', `ensemble member '${id}' is itself an ensemble; list its members instead`);
    const ck = checkpointOf(job);
    if (!ck.objectKey && !(ck.path && existsSync(ck.path))) throw new AppError('CONFLICT', `ensemble member '${id}' has no checkpoint to load its weights from`);
    members.push(job);
  }
  const first = members[0]!;
  for (const m of members.slice(1)) {
    if (m.datasetVersion !== first.datasetVersion || (!first.datasetVersion && m.datasetDir !== first.datasetDir)) {
      throw new AppError(
        'INVALID_INPUT',
        `ensemble members must share one dataset version: '${first.id}' was trained on ${short(first.datasetVersion ?? first.datasetDir)}, '${m.id}' on ${short(m.datasetVersion ?? m.datasetDir)}`,
      );
    }
    if (m.inputSize !== first.inputSize) {
      throw new AppError('INVALID_INPUT', `ensemble members must share one input size: '${first.id}' takes ${first.inputSize}px, '${m.id}' ${m.inputSize}px`);
    }
  }
  if (request.dataset_version !== undefined && request.dataset_version !== first.datasetVersion) {
    throw new AppError(
      'INVALID_INPUT',
      `dataset_version ${short(request.dataset_version)} is not the one the ensemble's members were trained on (${short(first.datasetVersion ?? first.datasetDir)}); omit it or combine jobs trained on it`,
    );
  }
  if (request.dataset_dir !== undefined && (first.datasetVersion || path.resolve(request.dataset_dir) !== first.datasetDir)) {
    throw new AppError('INVALID_INPUT', "dataset_dir is not the folder the ensemble's members were trained on; omit it");
  }
  if (request.input_size !== undefined && request.input_size !== first.inputSize) {
    throw new AppError('INVALID_INPUT', `input_size ${request.input_size} differs from the members' input size ${first.inputSize}; omit it`);
  }
  return { members, datasetVersion: first.datasetVersion, datasetDir: first.datasetVersion ? null : first.datasetDir, inputSize: first.inputSize };
}

/** One member as the worker's `ensemble.members[]` entry. */
export interface EnsembleMemberSpec {
  job_id: string;
  checkpoint: string;
  temperature: number | null;
  run_id: string | null;
}

/**
 * The worker's `ensemble` block for a queued ensemble job: each member's checkpoint resolved as a
 * resume does (the worker's file when still here, else the stored copy fetched into `dir`).
 * @throws AppError NOT_FOUND / CONFLICT when a member vanished or lost its checkpoint meanwhile.
 */
export async function ensembleSpec(store: TrainingStore, objects: ObjectStore, ids: readonly string[], dir: string): Promise<{ members: EnsembleMemberSpec[]; combine: string }> {
  const members: EnsembleMemberSpec[] = [];
  for (const id of ids) {
    const job = await succeededMember(store, id);
    const ck = checkpointOf(job);
    let file: string;
    if (ck.path && existsSync(ck.path)) file = ck.path;
    else if (ck.objectKey) {
      file = path.join(dir, `member-${id}.pt`);
      if (!existsSync(file)) await fetchToFile(objects, ck.objectKey, file);
    } else throw new AppError('CONFLICT', `ensemble member '${id}': its checkpoint is gone (${ck.path ?? 'no path'}) and no stored copy exists`);
    const t = job.metrics?.temperature;
    members.push({ job_id: id, checkpoint: file, temperature: typeof t === 'number' && t > 0 ? t : null, run_id: job.runId });
  }
  return { members, combine: ENSEMBLE_COMBINE };
}

/** The members' job and tracking-run ids (lineage of the registered model). */
export async function ensembleLineage(store: TrainingStore, ids: readonly string[]): Promise<{ job_id: string; run_id: string | null; model: string | null }[]> {
  const out = [];
  for (const id of ids) {
    const job = await store.getJob(id);
    out.push({ job_id: id, run_id: job?.runId ?? null, model: job?.model ?? null });
  }
  return out;
}
