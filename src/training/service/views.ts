import type { EpochRecord, JobRecord, StoredEvent, StudyRecord, TrialRecord } from '../store/types.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/**
 * Seconds left, from the pace of the current attempt since its worker started (setup time and
 * the epochs a resumed attempt skipped are left out).
 */
export function etaSeconds(job: JobRecord, now = Date.now()): number | null {
  if (job.state !== 'running' || !job.progress || !job.info) return null;
  const startedAt = Number(job.info.started_at);
  const f0 = Number(job.info.start_fraction ?? 0);
  const f = job.progress.fraction;
  if (!Number.isFinite(startedAt) || !(f > f0) || f >= 1) return null;
  const rate = (f - f0) / Math.max(1, now - startedAt);
  return Math.round((1 - f) / rate / 1000);
}

/** The API shape of a job (snake_case, ISO times); `history` only when given. */
export function jobView(job: JobRecord, history?: EpochRecord[]) {
  const info = job.info ?? {};
  return {
    job_id: job.id,
    state: job.state,
    model: job.model,
    input_size: job.inputSize,
    dataset_version: job.datasetVersion,
    experiment: job.experiment,
    attempt: job.attempt,
    progress: job.progress,
    current: job.current,
    ...(history ? { history: history.map((e) => ({ ...e.metrics, epoch: e.epoch, attempt: e.attempt })) } : {}),
    eta_seconds: etaSeconds(job),
    images_per_sec: job.imagesPerSec,
    artifacts: Object.fromEntries(
      Object.entries(job.artifacts).map(([k, a]) => [k, { key: a.key, sha256: a.sha256, bytes: a.bytes, content_type: a.contentType, file: a.file }]),
    ),
    metrics: job.metrics,
    test_metrics: job.testMetrics,
    threshold: job.threshold,
    best_epoch: job.bestEpoch,
    best_val_auc: job.bestValAuc,
    parity: job.parity,
    last_checkpoint: job.lastCheckpoint
      ? { epoch: job.lastCheckpoint.epoch, step: job.lastCheckpoint.step, attempt: job.lastCheckpoint.attempt, stored: !!job.lastCheckpoint.objectKey }
      : null,
    worker: job.workerHost
      ? { host: job.workerHost, pid: job.workerPid, device: info.device ?? null, threads: info.threads ?? null, processes: info.world_size ?? 1, backend: info.backend ?? null, parameters: info.parameters ?? null }
      : null,
    run_id: job.runId,
    registered: job.registered,
    error: job.error,
    request: job.request as unknown as Record<string, unknown>,
    created_by: job.createdBy,
    created_at: iso(job.createdAt)!,
    updated_at: iso(job.updatedAt)!,
    finished_at: iso(job.finishedAt),
  };
}

export function eventView(e: StoredEvent) {
  const { event: _drop, ...data } = e.data;
  return { seq: e.seq, attempt: e.attempt, event: e.event, time: new Date(e.time).toISOString(), data };
}

export function trialView(t: TrialRecord) {
  return {
    trial: t.trial,
    state: t.state,
    value: t.value,
    params: t.params,
    history: t.history as Record<string, unknown>[],
    pruned_epoch: t.prunedEpoch,
    best_epoch: t.bestEpoch,
    metrics: t.metrics,
    run_id: t.runId,
    error: t.error,
  };
}

export function studyView(s: StudyRecord, trials?: TrialRecord[]) {
  return {
    study_id: s.id,
    state: s.state,
    dataset_version: s.datasetVersion,
    experiment: s.experiment,
    n_trials: s.request.n_trials,
    pruner: s.request.pruner,
    concurrency: s.request.concurrency,
    search_space: s.request.search_space,
    best: s.best,
    ...(trials ? { trials: trials.map(trialView) } : {}),
    error: s.error,
    created_by: s.createdBy,
    created_at: iso(s.createdAt)!,
    finished_at: iso(s.finishedAt),
  };
}
