import { existsSync } from 'node:fs';
import { TOPICS } from '../../core/events/index.js';
import { AppError } from '../../core/errors.js';
import type { EvaluationMetrics, TrainerEvent, TrainerEventOf } from '../runner/index.js';
import type { JobPatch } from '../store/training-store.js';
import type { ArtifactRef, CheckpointRef, JobRecord, JobState } from '../store/types.js';
import { fetchToFile, renderEvaluationPlots, storeBytes, storeFile } from './artifacts.js';
import { HEARTBEAT_MS, SERVICE_NAME, type ActiveAttempt, type TrainingContext } from './context.js';
import { readExportManifestInfo } from './datasets.js';
import type { Int8Gate } from '../../model-registry/client/index.js';
import { int8ParityGate } from './int8-gate.js';
import { canaryReference, onnxParity } from './parity.js';
import { jobPaths } from './paths.js';
import { buildJobSpec, jobProcesses, threadsPerProcess, trackingParams } from './spec.js';
import { registerJobModel } from './register-model.js';
import { ensembleSpec } from './ensemble.js';

/** Worker artifact kinds stored in the object store, with their path in the tracking run. */
const STORED_ARTIFACTS: Record<string, string> = {
  checkpoint: 'checkpoint/checkpoint.pt',
  state_dict: 'checkpoint/state_dict.pt',
  onnx: 'model/model.onnx',
  onnx_int8: 'model/model.int8.onnx',
  model_meta: 'model/model.json',
  evaluation: 'evaluation/evaluation.json',
};

/** An INT8 variant's canary images must give back its own recorded outputs within this (its integer kernels are exact; the float parts around them are not bit-stable across batch sizes). */
const INT8_CANARY_TOLERANCE = 0.005;

/** Bigger files (large-model checkpoints) are tracked as a pointer to their stored object, not copied again. */
const MAX_TRACKED_BYTES = 64 * 1024 * 1024;

/** At most one stored `progress` event per job per this interval. */
const PROGRESS_EVENT_INTERVAL_MS = 10_000;

const EPOCH_FIELDS = ['train_loss', 'val_loss', 'val_auc', 'lr', 'images_per_sec', 'seconds', 'best_val_auc', 'early_stopped'] as const;

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs the next attempt of a queued job: claims it, exports its dataset, starts the worker,
 * records every event (progress, epochs, checkpoints, evaluations), stores the artifacts, checks
 * ONNX parity, tracks the run, and leaves the job in a final state. Returns quietly when the job
 * is no longer queued (cancelled meanwhile, or claimed by another replica).
 */
export async function runJobAttempt(ctx: TrainingContext, jobId: string): Promise<void> {
  const job = await ctx.store.getJob(jobId);
  if (!job || job.state !== 'queued') return;
  const attempt = job.attempt + 1;
  const now = Date.now();
  const claimed = await ctx.store.updateJob(
    jobId,
    {
      state: 'running',
      attempt,
      workerHost: ctx.host,
      workerPid: null,
      ownerPid: process.pid,
      heartbeatAt: now,
      attemptStartedAt: now,
      finishedAt: null,
      error: null,
      progress: { ...(job.progress ?? { epoch: 0, epochs: 0, step: 0, steps: 0, fraction: 0 }), phase: 'preparing' },
    },
    ['queued'],
  );
  if (!claimed) return;
  let settle!: () => void;
  const active: ActiveAttempt = { kind: 'job', handle: null, stopReason: null, done: new Promise<void>((r) => (settle = r)) };
  ctx.active.set(jobId, active);
  const heartbeat = setInterval(() => {
    ctx.store.updateJob(jobId, { heartbeatAt: Date.now() }, ['running']).catch(() => {});
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const run = new JobAttempt(ctx, { ...job, state: 'running', attempt }, active);
  try {
    await run.execute();
  } catch (err) {
    await run.abort(err);
  } finally {
    clearInterval(heartbeat);
    ctx.active.delete(jobId);
    ctx.metrics?.imagesPerSecond.remove({ job_id: jobId, model: job.model });
    settle();
  }
}

class JobAttempt {
  readonly #ctx: TrainingContext;
  readonly #active: ActiveAttempt;
  readonly #paths: ReturnType<typeof jobPaths>;
  #job: JobRecord;
  readonly #evaluations: Record<string, EvaluationMetrics> = {};
  #epochs = 0;
  #startFraction = 0;
  #finalState: JobState | null = null;

  constructor(ctx: TrainingContext, job: JobRecord, active: ActiveAttempt) {
    this.#ctx = ctx;
    this.#job = job;
    this.#active = active;
    this.#paths = jobPaths(ctx.platform.config.home, job.id);
  }

  get #attempt(): number {
    return this.#job.attempt;
  }

  async #update(patch: JobPatch, onlyIn: readonly JobState[] = ['running']): Promise<boolean> {
    const changed = await this.#ctx.store.updateJob(this.#job.id, patch, onlyIn);
    if (changed) this.#job = { ...this.#job, ...patch } as JobRecord;
    this.#ctx.live.notify(this.#job.id);
    return changed;
  }

  async execute(): Promise<void> {
    const { store, runner, tracker } = this.#ctx;
    const job = this.#job;
    await this.#ctx.record(job.id, this.#attempt, 'state', { state: 'running', attempt: this.#attempt, phase: 'preparing' });

    const datasetDir = job.datasetVersion ? await this.#ctx.datasets.exportDir(job.datasetVersion) : job.datasetDir;
    if (!datasetDir || !existsSync(datasetDir)) throw new AppError('UNPROCESSABLE', `dataset folder '${datasetDir}' is missing`);
    const testDirs = [];
    for (const version of job.request.test_dataset_versions ?? []) {
      testDirs.push({ name: version.slice(0, 12), dataset_dir: await this.#ctx.datasets.exportDir(version) });
    }
    const manifest = await readExportManifestInfo(datasetDir);
    const resumeFrom = await this.#resumeCheckpoint();
    // An ensemble job: its members' checkpoints (resolved as a resume does) instead of training.
    const ensemble = job.request.ensemble_of?.length ? await ensembleSpec(store, this.#ctx.platform.objects, job.request.ensemble_of, this.#paths.dir) : null;
    const ensembleParams = ensemble
      ? {
          model: job.model,
          'ensemble.members': ensemble.members.map((m) => m.job_id).join(','),
          'ensemble.member_runs': ensemble.members.map((m) => m.run_id ?? '').join(','),
          'ensemble.combine': ensemble.combine,
        }
      : {};

    if (job.runId) await tracker.reopenRun(job.runId);
    else {
      const runId = await tracker.startRun({
        experiment: job.experiment,
        runName: job.id,
        userId: job.createdBy,
        params: trackingParams(job.request, ensembleParams),
        tags: {
          'xray.job_id': job.id,
          ...(ensemble ? { 'xray.ensemble_of': ensemble.members.map((m) => m.job_id).join(',') } : {}),
          'xray.model': job.model,
          'xray.dataset_version': job.datasetVersion ?? manifest.versionId,
          'xray.preprocessing_hash': manifest.preprocessingHash,
          'mlflow.source.git.commit': await this.#ctx.gitCommit(),
          'mlflow.source.name': 'xray-mlops training service',
          'mlflow.user': job.createdBy,
        },
        dataset: {
          name: job.datasetVersion ? `dataset-${job.datasetVersion.slice(0, 12)}` : 'dataset-dir',
          digest: manifest.versionId || job.datasetVersion || 'unknown',
          source: job.datasetVersion ? `xray-dataset://${job.datasetVersion}` : datasetDir,
        },
      });
      if (runId) await this.#update({ runId });
    }

    if (this.#active.stopReason) {
      await this.#finish(this.#active.stopReason === 'shutdown' ? 'interrupted' : 'cancelled', { error: null });
      return;
    }
    const processes = jobProcesses(job.request);
    const threads = threadsPerProcess(this.#ctx.threads, processes);
    const spec = buildJobSpec(job.request, {
      jobId: job.id,
      datasetDir,
      outputDir: this.#paths.output,
      threads,
      resumeFrom,
      testDatasetDirs: testDirs,
    });
    if (ensemble) spec.ensemble = ensemble;
    const handle = await runner.start({
      command: 'run',
      spec,
      specPath: this.#paths.spec(this.#attempt),
      logPath: this.#paths.log,
      threads,
      processes,
    });
    this.#active.handle = handle;
    await this.#update({ workerPid: handle.pid ?? null });
    if (this.#active.stopReason) handle.cancel();

    let lastProgressStored = 0;
    for await (const event of handle.events) {
      // Progress lives on the job row; the event log keeps one progress event per interval, not every one.
      const keep = event.event !== 'other' && (event.event !== 'progress' || Date.now() - lastProgressStored >= PROGRESS_EVENT_INTERVAL_MS);
      if (event.event === 'progress' && keep) lastProgressStored = Date.now();
      if (keep) await store.appendEvent(job.id, this.#attempt, event.event, event as unknown as Record<string, unknown>);
      try {
        await this.#onEvent(event);
      } catch (err) {
        // Our bookkeeping failed (store, object store): stop the worker rather than train unrecorded.
        this.#ctx.logger.error({ err, job: job.id, event: event.event }, 'recording a worker event failed');
        handle.kill();
        throw err;
      }
      this.#ctx.live.notify(job.id);
    }
    await handle.exit;
    if (!this.#finalState) throw new Error('the worker ended without a result');
  }

  /** The checkpoint a resumed attempt starts from: the worker's file if still here, else the stored copy. */
  async #resumeCheckpoint(): Promise<string | null> {
    const ck = this.#job.lastCheckpoint;
    if (!ck) return null;
    if (existsSync(ck.path)) return ck.path;
    if (ck.objectKey) {
      const local = this.#paths.restoredCheckpoint(this.#attempt);
      await fetchToFile(this.#ctx.platform.objects, ck.objectKey, local);
      return local;
    }
    throw new AppError('UNPROCESSABLE', `the checkpoint of epoch ${ck.epoch} is gone (${ck.path}) and no stored copy exists`);
  }

  async #onEvent(event: TrainerEvent): Promise<void> {
    switch (event.event) {
      case 'started':
        return this.#onStarted(event);
      case 'progress':
        return this.#onProgress(event);
      case 'epoch':
        return this.#onEpoch(event);
      case 'checkpoint':
        await this.#update({ lastCheckpoint: { epoch: event.epoch, step: 0, path: event.path, attempt: this.#attempt } });
        return;
      case 'evaluation':
        this.#evaluations[event.split] = event.metrics;
        await this.#update({ progress: { ...this.#progress(), phase: 'evaluating' } });
        return;
      case 'finished':
        return this.#onFinished(event);
      case 'cancelled':
        return this.#onCancelled(event);
      case 'failed':
        return this.#onFailed(event);
      case 'other':
        this.#ctx.logger.debug({ job: this.#job.id, event: event.name }, 'worker event not used by the service');
        return;
      default:
        return;
    }
  }

  #progress() {
    return this.#job.progress ?? { phase: 'training' as const, epoch: 0, epochs: this.#epochs, step: 0, steps: 0, fraction: 0 };
  }

  async #onStarted(e: TrainerEventOf<'started'>): Promise<void> {
    this.#epochs = e.epochs;
    const steps = e.steps_per_epoch ?? 0;
    this.#startFraction = Math.min(1, Math.max(0, (e.start_epoch - 1) / Math.max(1, e.epochs)));
    await this.#update({
      info: { ...e, event: undefined, started_at: Date.now(), start_fraction: this.#startFraction },
      inputSize: e.input_size ?? this.#job.inputSize,
      progress: { phase: 'training', epoch: e.start_epoch, epochs: e.epochs, step: 0, steps, fraction: this.#startFraction },
    });
  }

  async #onProgress(e: TrainerEventOf<'progress'>): Promise<void> {
    const epochs = this.#epochs || this.#progress().epochs || 1;
    const fraction = Math.min(1, (e.epoch - 1 + e.step / Math.max(1, e.steps)) / epochs);
    const patch: JobPatch = { progress: { phase: 'training', epoch: e.epoch, epochs, step: e.step, steps: e.steps, fraction } };
    if (typeof e.images_per_sec === 'number') {
      patch.imagesPerSec = e.images_per_sec;
      this.#ctx.metrics?.imagesPerSecond.set({ job_id: this.#job.id, model: this.#job.model }, e.images_per_sec);
    }
    await this.#update(patch);
    // The worker reports the epoch's running mean loss every couple of seconds (a bounded rate),
    // with the losses of (at most 20 of) the steps since: both logged against the global step, so
    // runs compare per step, not only per epoch.
    if (typeof e.loss === 'number' && e.steps > 0) await this.#ctx.tracker.logMetrics(this.#job.runId, { train_loss_running: e.loss }, (e.epoch - 1) * e.steps + e.step);
    for (const [step, loss] of e.step_losses ?? []) await this.#ctx.tracker.logMetrics(this.#job.runId, { train_loss_step: loss }, step);
  }

  async #onEpoch(e: TrainerEventOf<'epoch'>): Promise<void> {
    const metrics: Record<string, unknown> = { epoch: e.epoch, epochs: e.epochs };
    for (const key of EPOCH_FIELDS) metrics[key] = e[key] ?? null;
    this.#epochs = e.epochs;
    await this.#ctx.store.putEpoch(this.#job.id, e.epoch, this.#attempt, metrics);
    const last = e.early_stopped || e.epoch >= e.epochs;
    const patch: JobPatch = {
      current: metrics,
      progress: { phase: last ? 'evaluating' : 'training', epoch: e.epoch, epochs: e.epochs, step: 0, steps: this.#progress().steps, fraction: last ? 1 : e.epoch / e.epochs },
    };
    if (typeof e.images_per_sec === 'number') {
      patch.imagesPerSec = e.images_per_sec;
      this.#ctx.metrics?.imagesPerSecond.set({ job_id: this.#job.id, model: this.#job.model }, e.images_per_sec);
    }
    await this.#update(patch);
    this.#ctx.metrics?.epochs.inc({ model: this.#job.model });
    await this.#ctx.tracker.logMetrics(
      this.#job.runId,
      { train_loss: e.train_loss, val_loss: e.val_loss, val_auc: e.val_auc, best_val_auc: e.best_val_auc, lr: e.lr, images_per_sec: e.images_per_sec },
      e.epoch,
    );
  }

  async #onFinished(e: TrainerEventOf<'finished'>): Promise<void> {
    const { objects } = this.#ctx.platform;
    const job = this.#job;
    const files = e.artifacts ?? {};
    const artifacts: Record<string, ArtifactRef> = {};
    for (const kind of Object.keys(STORED_ARTIFACTS)) {
      const file = files[kind];
      if (file && existsSync(file)) artifacts[kind] = await storeFile(objects, file);
    }
    const evaluations: Record<string, EvaluationMetrics> = { ...this.#evaluations };
    if (!evaluations.val && e.metrics) evaluations.val = e.metrics;
    try {
      const plots = await renderEvaluationPlots(evaluations, `${job.model} ${job.id}`);
      if (plots.roc) artifacts.roc_png = await storeBytes(objects, plots.roc, 'roc.png');
      if (plots.calibration) artifacts.calibration_png = await storeBytes(objects, plots.calibration, 'calibration.png');
    } catch (err) {
      this.#ctx.logger.warn({ err, job: job.id }, 'rendering evaluation plots failed');
    }

    let parity: Record<string, unknown> | null = e.parity ? { ...e.parity } : null;
    if (e.parity?.method === 'deferred' && files.onnx && files.parity_samples) {
      try {
        parity = { ...(await onnxParity(files.onnx, files.parity_samples)), worker: e.parity };
      } catch (err) {
        parity = { method: 'onnxruntime-node', ok: null, max_abs_diff: null, n: 0, error: errorMessage(err), worker: e.parity };
      }
    }

    if (files.onnx && files.parity_samples && existsSync(files.parity_samples)) {
      try {
        artifacts.canary = await storeBytes(objects, await canaryReference(files.parity_samples), 'canary.json');
      } catch (err) {
        this.#ctx.logger.warn({ err, job: job.id }, 'recording the canary reference failed; the promotion canary will only check the load');
      }
    }

    let int8Gate: Int8Gate | null = null;
    if (files.onnx && files.onnx_int8 && files.int8_gate && existsSync(files.int8_gate)) {
      try {
        const { gate, int8Probabilities } = await int8ParityGate(files.onnx, files.onnx_int8, files.int8_gate);
        int8Gate = gate;
        if (files.parity_samples && existsSync(files.parity_samples)) {
          artifacts.canary_int8 = await storeBytes(objects, await canaryReference(files.parity_samples, undefined, { probabilities: int8Probabilities, tolerance: INT8_CANARY_TOLERANCE }), 'canary.json');
        }
      } catch (err) {
        this.#ctx.logger.warn({ err, job: job.id }, 'the INT8 parity gate could not be measured; the variant will not be registered');
      }
      parity = { ...(parity ?? {}), int8: int8Gate ?? { passed: false, error: 'the INT8 parity gate could not be measured' } };
    }

    const runId = job.runId;
    for (const [kind, runPath] of Object.entries(STORED_ARTIFACTS)) {
      const ref = artifacts[kind];
      if (!ref) continue;
      if (ref.bytes <= MAX_TRACKED_BYTES) await this.#ctx.tracker.logArtifact(runId, runPath, () => objects.get(ref.key));
      else await this.#ctx.tracker.logArtifact(runId, `${runPath}.ref.json`, async () => Buffer.from(JSON.stringify({ object_key: ref.key, sha256: ref.sha256, bytes: ref.bytes })));
    }
    for (const [kind, runPath] of [['roc_png', 'plots/roc.png'], ['calibration_png', 'plots/calibration.png']] as const) {
      const ref = artifacts[kind];
      if (ref) await this.#ctx.tracker.logArtifact(runId, runPath, () => objects.get(ref.key));
    }
    const final: Record<string, number | null | undefined> = { best_val_auc: e.best_val_auc, threshold: e.threshold, temperature: e.temperature };
    for (const [split, m] of Object.entries(evaluations)) {
      const prefix = split.replace(/[^A-Za-z0-9_]/g, '_');
      for (const key of ['auc', 'accuracy', 'sensitivity', 'specificity', 'ppv', 'npv', 'f1'] as const) final[`${prefix}_${key}`] = m[key] as number | null | undefined;
      final[`${prefix}_ece`] = m.calibration?.ece;
    }
    if (typeof parity?.max_abs_diff === 'number') final.onnx_parity_max_abs_diff = parity.max_abs_diff;
    if (int8Gate) {
      final.int8_val_auc = int8Gate.auc_int8;
      final.int8_auc_drop = int8Gate.auc_drop;
      final.int8_probability_mae = int8Gate.probability_mae;
      final.int8_speedup = int8Gate.speed?.speedup;
    }
    await this.#ctx.tracker.logMetrics(runId, final, e.best_epoch ?? 0);
    await this.#ctx.tracker.setTags(runId, {
      'xray.onnx_key': artifacts.onnx?.key ?? '',
      'xray.parity_ok': String(parity?.ok ?? 'unknown'),
      ...(files.onnx_int8 ? { 'xray.int8_gate': int8Gate ? (int8Gate.passed ? 'passed' : 'failed') : 'unmeasured' } : {}),
      'xray.best_epoch': String(e.best_epoch ?? ''),
    });

    const lastCheckpoint: CheckpointRef | null = artifacts.checkpoint
      ? { epoch: e.best_epoch ?? 0, step: 0, ...this.#job.lastCheckpoint, path: files.checkpoint!, objectKey: artifacts.checkpoint.key, sha256: artifacts.checkpoint.sha256, attempt: this.#attempt }
      : this.#job.lastCheckpoint;
    await this.#finish('succeeded', {
      metrics: (e.metrics as Record<string, unknown> | null | undefined) ?? (evaluations.val as Record<string, unknown> | undefined) ?? null,
      testMetrics: (e.test_metrics as Record<string, unknown> | undefined) ?? null,
      threshold: e.threshold ?? null,
      bestEpoch: e.best_epoch ?? null,
      bestValAuc: e.best_val_auc ?? null,
      artifacts,
      parity,
      lastCheckpoint,
      progress: { ...this.#progress(), phase: 'done', fraction: 1 },
    });
    await this.#ctx.platform.events
      .publish(TOPICS.trainingFinished, {
        job_id: job.id,
        run_id: runId,
        model: job.model,
        dataset_version: job.datasetVersion,
        best_val_auc: e.best_val_auc ?? null,
        onnx_key: artifacts.onnx?.key ?? null,
      })
      .catch(() => {});
    if (job.request.register_as) {
      try {
        await registerJobModel(this.#ctx, this.#job, job.request.register_as, { actor: job.createdBy, role: 'ml-engineer' });
      } catch (err) {
        this.#ctx.logger.warn({ err, job: job.id }, 'automatic registration failed');
        await this.#ctx.store.updateJob(job.id, { error: `training succeeded but registering as '${job.request.register_as}' failed: ${errorMessage(err)}` });
      }
    }
  }

  async #onCancelled(e: TrainerEventOf<'cancelled'>): Promise<void> {
    if (e.checkpoint) {
      const step = e.step ?? 0;
      const epoch = e.epoch ?? 0;
      // Mid-epoch (step > 0) the checkpoint holds `epoch - 1` finished epochs plus `step` batches.
      const ck: CheckpointRef = { epoch: step > 0 ? epoch - 1 : epoch, step, path: e.checkpoint, attempt: this.#attempt };
      await this.#update({ lastCheckpoint: ck });
    }
    await this.#finish(this.#active.stopReason === 'shutdown' ? 'interrupted' : 'cancelled', { error: null });
  }

  async #onFailed(e: TrainerEventOf<'failed'>): Promise<void> {
    const died = e.error_type === 'WorkerDied';
    if (died && this.#active.stopReason) {
      await this.#finish(this.#active.stopReason === 'shutdown' ? 'interrupted' : 'cancelled', { error: null });
      return;
    }
    await this.#finish('failed', { error: e.reason });
  }

  /** Records the final state of the attempt (once). */
  async #finish(state: JobState, patch: JobPatch): Promise<void> {
    if (this.#finalState) return;
    this.#finalState = state;
    if (state !== 'succeeded') await this.#storeCheckpointCopy();
    await this.#update({ ...patch, state, workerPid: null, finishedAt: Date.now() });
    await this.#ctx.record(this.#job.id, this.#attempt, 'state', { state, attempt: this.#attempt, error: patch.error ?? null });
    this.#ctx.metrics?.finished.inc({ state });
    await this.#ctx.tracker.endRun(this.#job.runId, state === 'succeeded' ? 'FINISHED' : state === 'failed' ? 'FAILED' : 'KILLED');
    this.#ctx.platform.audit.record({
      actor: this.#job.createdBy,
      action: 'training.finish',
      resource: `training-job:${this.#job.id}`,
      outcome: state === 'succeeded' ? 'success' : 'failure',
      service: SERVICE_NAME,
      details: { state, attempt: this.#attempt, best_val_auc: this.#job.bestValAuc, error: patch.error ?? null },
    });
  }

  /** Copies the newest checkpoint into the object store so a resume works on any replica. */
  async #storeCheckpointCopy(): Promise<void> {
    const ck = this.#job.lastCheckpoint;
    if (!ck || ck.objectKey || !existsSync(ck.path)) return;
    try {
      const ref = await storeFile(this.#ctx.platform.objects, ck.path);
      await this.#update({ lastCheckpoint: { ...ck, objectKey: ref.key, sha256: ref.sha256 } });
    } catch (err) {
      this.#ctx.logger.warn({ err, job: this.#job.id }, 'could not store a copy of the checkpoint');
    }
  }

  /** Bookkeeping or setup failed (not the worker): stop the worker and fail the attempt. */
  async abort(err: unknown): Promise<void> {
    this.#active.handle?.kill();
    if (this.#finalState) {
      this.#ctx.logger.error({ err, job: this.#job.id }, 'training attempt failed after recording its result');
      return;
    }
    const message = errorMessage(err);
    this.#ctx.logger.warn({ err, job: this.#job.id }, 'training attempt failed');
    await this.#finish('failed', { error: message }).catch((e2) => this.#ctx.logger.error({ err: e2, job: this.#job.id }, 'could not record the failure'));
  }
}
