import { existsSync } from 'node:fs';
import { AppError } from '../../core/errors.js';
import type { TrainerEvent, TrainerEventOf } from '../runner/index.js';
import type { StudyPatch } from '../store/training-store.js';
import type { StudyRecord, StudyState, TrialRecord } from '../store/types.js';
import { HEARTBEAT_MS, SERVICE_NAME, type ActiveAttempt, type TrainingContext } from './context.js';
import { readExportManifestInfo } from './datasets.js';
import { studyPaths } from './paths.js';
import { buildStudySpec, trackingParams } from './spec.js';

type TrialHistory = TrialRecord['history'];

/**
 * Runs a queued hyper-parameter study: one worker (`-m trainer optimize`) runs the Optuna study
 * (trials in parallel up to the study's concurrency); every trial is recorded as a row and as a
 * tracked run (a child of the study's run), with its per-epoch validation AUC, pruning and result.
 */
export async function runStudyAttempt(ctx: TrainingContext, studyId: string): Promise<void> {
  const study = await ctx.store.getStudy(studyId);
  if (!study || study.state !== 'queued') return;
  const now = Date.now();
  const claimed = await ctx.store.updateStudy(
    studyId,
    { state: 'running', workerHost: ctx.host, workerPid: null, ownerPid: process.pid, heartbeatAt: now, startedAt: now, error: null },
    ['queued'],
  );
  if (!claimed) return;
  let settle!: () => void;
  const active: ActiveAttempt = { kind: 'study', handle: null, stopReason: null, done: new Promise<void>((r) => (settle = r)) };
  ctx.active.set(studyId, active);
  const heartbeat = setInterval(() => {
    ctx.store.updateStudy(studyId, { heartbeatAt: Date.now() }, ['running']).catch(() => {});
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const run = new StudyAttempt(ctx, { ...study, state: 'running' }, active);
  try {
    await run.execute();
  } catch (err) {
    await run.abort(err);
  } finally {
    clearInterval(heartbeat);
    ctx.active.delete(studyId);
    settle();
  }
}

class StudyAttempt {
  readonly #ctx: TrainingContext;
  readonly #active: ActiveAttempt;
  #study: StudyRecord;
  #studyRunId: string | null = null;
  readonly #trialRuns = new Map<number, string | null>();
  readonly #histories = new Map<number, TrialHistory>();
  #summary: TrainerEventOf<'study_finished'> | null = null;
  #failure: string | null = null;
  #final: StudyState | null = null;

  constructor(ctx: TrainingContext, study: StudyRecord, active: ActiveAttempt) {
    this.#ctx = ctx;
    this.#study = study;
    this.#active = active;
  }

  async #update(patch: StudyPatch): Promise<void> {
    if (await this.#ctx.store.updateStudy(this.#study.id, patch, ['running'])) this.#study = { ...this.#study, ...patch } as StudyRecord;
    this.#ctx.live.notify(this.#study.id);
  }

  async execute(): Promise<void> {
    const study = this.#study;
    const paths = studyPaths(this.#ctx.platform.config.home, study.id);
    await this.#ctx.record(study.id, 1, 'state', { state: 'running' });
    const datasetDir = study.datasetVersion ? await this.#ctx.datasets.exportDir(study.datasetVersion) : study.datasetDir;
    if (!datasetDir || !existsSync(datasetDir)) throw new AppError('UNPROCESSABLE', `dataset folder '${datasetDir}' is missing`);
    const manifest = await readExportManifestInfo(datasetDir);
    this.#studyRunId = await this.#ctx.tracker.startRun({
      experiment: study.experiment,
      runName: study.id,
      userId: study.createdBy,
      params: { ...trackingParams(study.request), n_trials: study.request.n_trials, pruner: study.request.pruner, search_space: JSON.stringify(study.request.search_space) },
      tags: {
        'xray.study_id': study.id,
        'xray.dataset_version': study.datasetVersion ?? manifest.versionId,
        'xray.preprocessing_hash': manifest.preprocessingHash,
        'mlflow.source.git.commit': await this.#ctx.gitCommit(),
        'mlflow.user': study.createdBy,
      },
    });
    this.#datasetTags = {
      'xray.dataset_version': study.datasetVersion ?? manifest.versionId,
      'xray.preprocessing_hash': manifest.preprocessingHash,
    };
    if (this.#active.stopReason) {
      await this.#finish(this.#active.stopReason === 'shutdown' ? 'interrupted' : 'cancelled');
      return;
    }
    const spec = buildStudySpec(study.request, { jobId: study.id, datasetDir, outputDir: paths.output, threads: this.#ctx.threads });
    const handle = await this.#ctx.runner.start({ command: 'optimize', spec, specPath: paths.spec, logPath: paths.log, threads: this.#ctx.threads });
    this.#active.handle = handle;
    await this.#update({ workerPid: handle.pid ?? null });
    if (this.#active.stopReason) handle.cancel();
    for await (const event of handle.events) {
      if (event.event !== 'other' && event.event !== 'progress') {
        await this.#ctx.store.appendEvent(study.id, 1, event.event, event as unknown as Record<string, unknown>);
      }
      try {
        await this.#onEvent(event);
      } catch (err) {
        handle.kill();
        throw err;
      }
      this.#ctx.live.notify(study.id);
    }
    await handle.exit;
    if (this.#active.stopReason) await this.#finish(this.#active.stopReason === 'shutdown' ? 'interrupted' : 'cancelled');
    else if (this.#summary?.cancelled) await this.#finish('cancelled');
    else if (this.#failure !== null) await this.#finish('failed', this.#failure);
    else if (this.#summary) await this.#finish('succeeded');
    else await this.#finish('failed', 'the study ended without a summary');
  }

  #datasetTags: Record<string, string> = {};

  async #onEvent(event: TrainerEvent): Promise<void> {
    const { store, tracker } = this.#ctx;
    const id = this.#study.id;
    switch (event.event) {
      case 'trial_started': {
        this.#histories.set(event.trial, []);
        await store.putTrial(id, event.trial, { state: 'running', params: event.params, history: [] });
        const runId = await tracker.startRun({
          experiment: this.#study.experiment,
          runName: `${id}-trial-${event.trial}`,
          userId: this.#study.createdBy,
          params: trackingParams({ ...this.#study.request, hyperparameters: { ...this.#study.request.hyperparameters } }, event.params),
          tags: {
            'xray.study_id': id,
            'xray.trial': String(event.trial),
            'xray.model': String(event.params.model ?? this.#study.request.model),
            ...this.#datasetTags,
            ...(this.#studyRunId ? { 'mlflow.parentRunId': this.#studyRunId } : {}),
          },
        });
        this.#trialRuns.set(event.trial, runId);
        if (runId) await store.putTrial(id, event.trial, { runId });
        return;
      }
      case 'epoch': {
        if (event.trial === undefined) return;
        const history = this.#histories.get(event.trial) ?? [];
        history.push({ epoch: event.epoch, val_auc: event.val_auc, val_loss: event.val_loss ?? null, train_loss: event.train_loss ?? null });
        this.#histories.set(event.trial, history);
        await store.putTrial(id, event.trial, { history });
        this.#ctx.metrics?.epochs.inc({ model: this.#study.request.model });
        await tracker.logMetrics(this.#trialRuns.get(event.trial) ?? null, { train_loss: event.train_loss, val_loss: event.val_loss, val_auc: event.val_auc, lr: event.lr }, event.epoch);
        return;
      }
      case 'trial_pruned':
        await store.putTrial(id, event.trial, { state: 'pruned', prunedEpoch: event.epoch, value: event.value ?? null });
        await tracker.setTags(this.#trialRuns.get(event.trial) ?? null, { 'xray.trial_state': 'pruned' });
        await tracker.endRun(this.#trialRuns.get(event.trial) ?? null, 'KILLED');
        return;
      case 'trial_finished': {
        await store.putTrial(id, event.trial, {
          state: 'complete',
          value: event.value,
          bestEpoch: event.best_epoch ?? null,
          metrics: (event.metrics as Record<string, unknown> | null | undefined) ?? null,
        });
        const runId = this.#trialRuns.get(event.trial) ?? null;
        const m = event.metrics;
        await tracker.logMetrics(runId, { best_val_auc: event.value, val_sensitivity: m?.sensitivity, val_specificity: m?.specificity, val_f1: m?.f1 }, event.best_epoch ?? 0);
        await tracker.setTags(runId, { 'xray.trial_state': 'complete' });
        await tracker.endRun(runId, 'FINISHED');
        await tracker.logMetrics(this.#studyRunId, { trial_value: event.value }, event.trial);
        return;
      }
      case 'trial_failed':
        await store.putTrial(id, event.trial, { state: 'failed', error: event.reason });
        await tracker.endRun(this.#trialRuns.get(event.trial) ?? null, 'FAILED');
        return;
      case 'cancelled':
        if (event.trial !== undefined) {
          await store.putTrial(id, event.trial, { state: 'cancelled' });
          await tracker.endRun(this.#trialRuns.get(event.trial) ?? null, 'KILLED');
        }
        return;
      case 'study_finished': {
        this.#summary = event;
        for (const t of event.trials) {
          const state = t.state === 'complete' || t.state === 'pruned' || t.state === 'failed' || t.state === 'cancelled' ? t.state : 'failed';
          await store.putTrial(id, t.trial, { state, ...(typeof t.value === 'number' ? { value: t.value } : {}) });
        }
        if (event.best_trial !== null) {
          await this.#update({ best: { trial: event.best_trial, value: event.best_value, params: event.best_params ?? {} } });
          await tracker.logMetrics(this.#studyRunId, { best_value: event.best_value }, event.best_trial);
          await tracker.setTags(this.#studyRunId, { 'xray.best_trial': String(event.best_trial), 'xray.best_params': JSON.stringify(event.best_params ?? {}) });
        }
        return;
      }
      case 'failed':
        if (event.trial === undefined) this.#failure = event.reason;
        return;
      default:
        return;
    }
  }

  async #finish(state: StudyState, error: string | null = null): Promise<void> {
    if (this.#final) return;
    this.#final = state;
    // Trials still marked running were cut off with the study.
    for (const t of await this.#ctx.store.listTrials(this.#study.id)) {
      if (t.state === 'running') {
        await this.#ctx.store.putTrial(this.#study.id, t.trial, { state: 'cancelled' });
        await this.#ctx.tracker.endRun(this.#trialRuns.get(t.trial) ?? null, 'KILLED');
      }
    }
    await this.#update({ state, error, workerPid: null, finishedAt: Date.now() });
    await this.#ctx.record(this.#study.id, 1, 'state', { state, error });
    await this.#ctx.tracker.endRun(this.#studyRunId, state === 'succeeded' ? 'FINISHED' : state === 'failed' ? 'FAILED' : 'KILLED');
    this.#ctx.platform.audit.record({
      actor: this.#study.createdBy,
      action: 'training.study.finish',
      resource: `training-study:${this.#study.id}`,
      outcome: state === 'succeeded' ? 'success' : 'failure',
      service: SERVICE_NAME,
      details: { state, best: this.#study.best, error },
    });
  }

  async abort(err: unknown): Promise<void> {
    this.#active.handle?.kill();
    if (this.#final) return;
    const message = err instanceof Error ? err.message : String(err);
    this.#ctx.logger.warn({ err, study: this.#study.id }, 'study failed');
    await this.#finish('failed', message).catch((e2) => this.#ctx.logger.error({ err: e2 }, 'could not record the study failure'));
  }
}
