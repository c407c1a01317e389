import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Role } from '../../core/auth/index.js';
import { AppError } from '../../core/errors.js';
import type { Platform } from '../../core/platform.js';
import { LocalProcessRunner, type RuntimeInfo, type TrainerRunner } from '../runner/index.js';
import { KyselyTrainingStore, type TrainingStore } from '../store/training-store.js';
import {
  FINAL_STATES,
  newJobRecord,
  RESUMABLE_STATES,
  type EpochRecord,
  type JobRecord,
  type JobRequest,
  type Page,
  type PageRequest,
  type JobState,
  type StoredEvent,
  type StudyRecord,
  type StudyRequest,
  type TrialRecord,
} from '../store/types.js';
import { CANCEL_TOPIC, QUEUE_NAME, SERVICE_NAME, stopActive, type ActiveAttempt, type TrainingContext } from './context.js';
import { checkDatasetDir, PipelineDatasetSource, type DatasetSource } from './datasets.js';
import { ENSEMBLE_MODEL, planEnsemble } from './ensemble.js';
import { runJobAttempt } from './job-attempt.js';
import { LiveNotifier } from './live.js';
import type { TrainingMetrics } from './metrics.js';
import { newJobId, newStudyId } from './paths.js';
import { recover } from './recovery.js';
import { registerJobModel } from './register-model.js';
import { unavailableRegistrar, type ModelRegistrar, type RegisteredModel } from './registration.js';
import { DEFAULT_BATCH_SIZE, workerThreads } from './spec.js';
import { runStudyAttempt } from './study-attempt.js';
import { DEFAULT_EXPERIMENT, NoRunTracker, SafeTracker, type ExperimentSummary, type RunTracker } from './tracking.js';

export interface TrainingServiceOptions {
  runner?: TrainerRunner;
  store?: TrainingStore;
  datasets?: DatasetSource;
  tracker?: RunTracker;
  registrar?: ModelRegistrar;
  metrics?: TrainingMetrics | null;
  /** How long shutdown waits for workers to checkpoint before killing them (default 30 s). */
  shutdownGraceMs?: number;
  /** How often stale running jobs are looked for (default 30 s; 0 = only at start). */
  sweepIntervalMs?: number;
}

/** Who asks, for the audit trail. */
export interface Caller {
  actor: string;
  /** Defaults to 'ml-engineer' (the role the training routes require for changes). */
  role?: Role;
  requestId?: string;
}

interface QueuePayload {
  kind: 'job' | 'study';
  id: string;
}

/** One queue consumer per platform, handing jobs to whichever service instance is current. */
const consumers = new WeakMap<Platform, { service: TrainingService | null; ready: Promise<void> }>();

let gitCommitCache: Promise<string> | null = null;
function gitCommit(cwd: string): Promise<string> {
  gitCommitCache ??= new Promise((resolve) => {
    execFile('git', ['rev-parse', 'HEAD'], { cwd, timeout: 5000 }, (err, stdout) => resolve(err ? 'unknown' : stdout.trim() || 'unknown'));
  });
  return gitCommitCache;
}

/**
 * The training service: jobs (submit, inspect, cancel, resume, register), hyper-parameter
 * studies and experiment listings. Jobs run on the platform queue (`training`, concurrency
 * XRAY_TRAINER_CONCURRENCY) through a {@link TrainerRunner}; their state lives in the
 * {@link TrainingStore}, so it survives restarts.
 */
export class TrainingService {
  readonly platform: Platform;
  readonly store: TrainingStore;
  readonly runner: TrainerRunner;
  readonly live = new LiveNotifier();
  readonly #ctx: TrainingContext;
  readonly #tracker: RunTracker;
  readonly #options: TrainingServiceOptions;
  readonly #logger: Logger;
  #closed = false;
  #closing: Promise<void> | null = null;
  #sweep: NodeJS.Timeout | null = null;
  #unsubscribe: (() => Promise<void>) | null = null;

  constructor(platform: Platform, options: TrainingServiceOptions = {}) {
    this.platform = platform;
    this.#options = options;
    this.#logger = platform.logger.child({ service: SERVICE_NAME });
    this.store = options.store ?? new KyselyTrainingStore(platform.database);
    this.runner =
      options.runner ?? new LocalProcessRunner({ python: platform.config.python, cwd: platform.config.projectRoot, logger: this.#logger.child({ part: 'worker' }) });
    this.#tracker = options.tracker ?? new NoRunTracker();
    const registrar = options.registrar ?? unavailableRegistrar;
    const store = this.store;
    const live = this.live;
    this.#ctx = {
      platform,
      store,
      runner: this.runner,
      tracker: new SafeTracker(this.#tracker, this.#logger),
      datasets: options.datasets ?? new PipelineDatasetSource(platform),
      registrar: async () => registrar,
      metrics: options.metrics ?? null,
      live,
      logger: this.#logger,
      host: os.hostname(),
      threads: workerThreads(platform.config.trainerConcurrency),
      active: new Map<string, ActiveAttempt>(),
      gitCommit: () => gitCommit(platform.config.projectRoot),
      async record(ownerId, attempt, event, data) {
        await store.appendEvent(ownerId, attempt, event, data);
        live.notify(ownerId);
      },
    };
  }

  /** The experiment tracker in use ('registry' or 'none'). */
  get trackerKind(): string {
    return this.#tracker.kind;
  }

  /** Starts consuming the training queue, listens for cancel requests and recovers orphaned jobs. */
  async start(): Promise<void> {
    const { platform } = this;
    this.#unsubscribe = await platform.events.subscribe(CANCEL_TOPIC, (payload: { id?: string; reason?: string }) => {
      if (payload?.id) stopActive(this.#ctx, payload.id, 'cancel');
    });
    let consumer = consumers.get(platform);
    if (!consumer) {
      const entry: { service: TrainingService | null; ready: Promise<void> } = { service: this, ready: Promise.resolve() };
      entry.ready = platform.queue.process<QueuePayload>(
        QUEUE_NAME,
        async (job) => {
          const service = entry.service;
          // No live service (closed): leave the record queued; the next start's recovery queues it again.
          if (!service || service.#closed) return { skipped: true };
          await service.#dispatch(job.data);
          return { done: true };
        },
        { concurrency: platform.config.trainerConcurrency },
      );
      consumers.set(platform, entry);
      consumer = entry;
    } else consumer.service = this;
    await consumer.ready;
    await this.recover();
    const every = this.#options.sweepIntervalMs ?? 30_000;
    if (every > 0) {
      this.#sweep = setInterval(() => void this.recover().catch((err) => this.#logger.warn({ err }, 'training recovery sweep failed')), every);
      this.#sweep.unref();
    }
  }

  async #dispatch(payload: QueuePayload): Promise<void> {
    if (payload?.kind === 'study') await runStudyAttempt(this.#ctx, payload.id);
    else if (payload?.kind === 'job') await runJobAttempt(this.#ctx, payload.id);
    else this.#logger.warn({ payload }, 'ignoring a malformed training queue entry');
  }

  /** Marks orphaned running jobs/studies interrupted and re-queues lost queue entries. */
  recover(): Promise<{ interrupted: string[]; requeued: string[] }> {
    return recover(this.#ctx);
  }

  /** The worker runtime (python, torch), or AppError TRAINER_RUNTIME_MISSING. */
  runtime(): Promise<RuntimeInfo> {
    return this.runner.runtime();
  }

  #assertOpen(): void {
    if (this.#closed) throw new AppError('SERVICE_UNAVAILABLE', 'the training service is shutting down');
  }

  async #resolveDataset(request: { dataset_version?: string; dataset_dir?: string; test_dataset_versions?: string[]; input_size?: number; search_space?: Record<string, unknown> }) {
    if (!!request.dataset_version === !!request.dataset_dir) {
      throw new AppError('INVALID_INPUT', 'give exactly one of dataset_version or dataset_dir');
    }
    for (const v of request.test_dataset_versions ?? []) await this.#ctx.datasets.describe(v);
    if (request.dataset_version) {
      const info = await this.#ctx.datasets.describe(request.dataset_version);
      checkInputSize(request, info.preprocessingSize ?? null, `dataset version ${info.versionId.slice(0, 12)}…`);
      return { datasetVersion: info.versionId, datasetDir: null };
    }
    const { config } = this.platform;
    return { datasetVersion: null, datasetDir: checkDatasetDir(request.dataset_dir!, [config.home, config.importRoot]) };
  }

  /**
   * Queues a training job. Checks the dataset version exists and the worker runtime is installed
   * first, so a bad request fails now rather than in the queue.
   * With `ensemble_of`, checks the members instead (service/ensemble.ts planEnsemble) and uses their dataset.
   * @throws AppError NOT_FOUND (dataset version, ensemble member), INVALID_INPUT, CONFLICT (member not succeeded), TRAINER_RUNTIME_MISSING.
   */
  async submit(request: JobRequest, caller: Caller): Promise<JobRecord> {
    this.#assertOpen();
    checkDistributed(request);
    // An ensemble trains on its members' dataset version (and input size); see service/ensemble.ts.
    const ensemble = request.ensemble_of ? await planEnsemble(this.store, request) : null;
    const dataset = ensemble
      ? await this.#resolveDataset({ ...request, dataset_version: ensemble.datasetVersion ?? undefined, dataset_dir: ensemble.datasetDir ?? undefined, input_size: undefined })
      : await this.#resolveDataset(request);
    await this.runtime();
    const now = Date.now();
    const job = newJobRecord(
      {
        id: newJobId(),
        ...dataset,
        model: ensemble ? ENSEMBLE_MODEL : request.model,
        inputSize: ensemble ? ensemble.inputSize : (request.input_size ?? null),
        experiment: request.experiment ?? DEFAULT_EXPERIMENT,
        request,
        queueJobId: randomUUID(),
        progress: { phase: 'queued', epoch: 0, epochs: ensemble ? 1 : Number(request.hyperparameters?.epochs ?? 10), step: 0, steps: 0, fraction: 0 },
        createdBy: caller.actor,
      },
      now,
    );
    await this.store.createJob(job);
    await this.#ctx.record(job.id, 0, 'state', { state: 'queued', attempt: 0 });
    await this.platform.queue.add(QUEUE_NAME, 'train', { kind: 'job', id: job.id } satisfies QueuePayload, { jobId: job.queueJobId! });
    this.platform.audit.record({
      actor: caller.actor,
      action: 'training.start',
      resource: `training-job:${job.id}`,
      requestId: caller.requestId ?? null,
      service: SERVICE_NAME,
      details: { model: job.model, dataset_version: job.datasetVersion, experiment: job.experiment, hyperparameters: request.hyperparameters, ...(ensemble ? { ensemble_of: request.ensemble_of } : {}) },
    });
    return job;
  }

  getJob(id: string): Promise<JobRecord> {
    return this.store.requireJob(id);
  }

  listJobs(query: PageRequest & { states?: JobState[] }): Promise<Page<JobRecord>> {
    return this.store.listJobs(query);
  }

  epochs(id: string): Promise<EpochRecord[]> {
    return this.store.listEpochs(id);
  }

  /**
   * Cancels a job: a queued one at once; a running one by asking its worker to checkpoint and
   * stop (the job becomes `cancelled` when the worker confirms). Returns the job as it is now.
   * @throws AppError CONFLICT when the job already ended.
   */
  async cancel(id: string, caller: Caller): Promise<JobRecord> {
    const job = await this.store.requireJob(id);
    if (job.state === 'queued') {
      if (await this.store.updateJob(id, { state: 'cancelled', finishedAt: Date.now(), progress: job.progress ? { ...job.progress, phase: 'done' } : null }, ['queued'])) {
        await this.#ctx.record(id, job.attempt, 'state', { state: 'cancelled', attempt: job.attempt });
        this.#auditCancel(job, caller, 'queued');
        return this.store.requireJob(id);
      }
      return this.cancel(id, caller); // it started meanwhile
    }
    if (job.state !== 'running') throw new AppError('CONFLICT', `training job '${id}' is already ${job.state}`);
    if (!stopActive(this.#ctx, id, 'cancel')) await this.platform.events.publish(CANCEL_TOPIC, { id, reason: 'cancel' });
    this.#auditCancel(job, caller, 'running');
    return job;
  }

  #auditCancel(job: JobRecord, caller: Caller, was: string): void {
    this.platform.audit.record({
      actor: caller.actor,
      action: 'training.cancel',
      resource: `training-job:${job.id}`,
      requestId: caller.requestId ?? null,
      service: SERVICE_NAME,
      details: { was, attempt: job.attempt, last_checkpoint_epoch: job.lastCheckpoint?.epoch ?? null },
    });
  }

  /**
   * Queues a new attempt of a cancelled, interrupted or failed job, continuing from its last
   * checkpoint (from the start when it never wrote one). Same job id, attempt + 1.
   * @throws AppError CONFLICT when the job is queued, running or succeeded; TRAINER_RUNTIME_MISSING.
   */
  async resume(id: string, caller: Caller): Promise<JobRecord> {
    this.#assertOpen();
    const job = await this.store.requireJob(id);
    if (!RESUMABLE_STATES.includes(job.state)) {
      throw new AppError('CONFLICT', `training job '${id}' is ${job.state}; only ${RESUMABLE_STATES.join(', ')} jobs can be resumed`);
    }
    await this.runtime();
    const queueJobId = randomUUID();
    const updated = await this.store.updateJob(
      id,
      { state: 'queued', queueJobId, error: null, finishedAt: null, progress: job.progress ? { ...job.progress, phase: 'queued' } : null },
      RESUMABLE_STATES,
    );
    if (!updated) throw new AppError('CONFLICT', `training job '${id}' changed state meanwhile; try again`);
    await this.#ctx.record(id, job.attempt, 'state', { state: 'queued', attempt: job.attempt, resume_from_epoch: job.lastCheckpoint?.epoch ?? 0 });
    await this.platform.queue.add(QUEUE_NAME, 'train', { kind: 'job', id } satisfies QueuePayload, { jobId: queueJobId });
    this.platform.audit.record({
      actor: caller.actor,
      action: 'training.resume',
      resource: `training-job:${id}`,
      requestId: caller.requestId ?? null,
      service: SERVICE_NAME,
      details: { from_state: job.state, attempt: job.attempt + 1, checkpoint_epoch: job.lastCheckpoint?.epoch ?? null, checkpoint_step: job.lastCheckpoint?.step ?? null },
    });
    return this.store.requireJob(id);
  }

  /** Registers a succeeded job's model in the model registry. */
  async register(id: string, name: string, caller: Caller): Promise<RegisteredModel> {
    const job = await this.store.requireJob(id);
    return registerJobModel(this.#ctx, job, name, { actor: caller.actor, role: caller.role ?? 'ml-engineer', requestId: caller.requestId });
  }

  /** Events of a job or study after `afterSeq`. */
  events(ownerId: string, afterSeq = 0, limit = 500): Promise<StoredEvent[]> {
    return this.store.listEvents(ownerId, afterSeq, limit);
  }

  /**
   * Long poll: events after `afterSeq`, waiting up to `waitMs` for the first one. `done` is true
   * when the job or study is in a final state and every event has been returned.
   */
  async waitForEvents(ownerId: string, afterSeq: number, waitMs: number, signal?: AbortSignal): Promise<{ events: StoredEvent[]; done: boolean }> {
    const deadline = Date.now() + Math.max(0, waitMs);
    for (;;) {
      const events = await this.store.listEvents(ownerId, afterSeq, 500);
      if (events.length) return { events, done: false };
      const state = await this.#stateOf(ownerId);
      if (state && FINAL_STATES.includes(state)) {
        const late = await this.store.listEvents(ownerId, afterSeq, 500);
        return { events: late, done: late.length === 0 };
      }
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted || this.#closed) return { events: [], done: false };
      await this.live.wait(ownerId, Math.min(left, 1000), signal);
    }
  }

  async #stateOf(ownerId: string): Promise<JobState | null> {
    if (ownerId.startsWith('s-')) return (await this.store.getStudy(ownerId))?.state ?? null;
    return (await this.store.getJob(ownerId))?.state ?? null;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Queues a hyper-parameter study (Optuna: search space, n_trials, pruner; objective val AUC).
   * @throws AppError NOT_FOUND (dataset version), INVALID_INPUT, TRAINER_RUNTIME_MISSING.
   */
  async submitStudy(request: StudyRequest, caller: Caller): Promise<StudyRecord> {
    this.#assertOpen();
    const dataset = await this.#resolveDataset(request);
    const runtime = await this.runtime();
    if (!runtime.optuna) throw new AppError('TRAINER_RUNTIME_MISSING', `${runtime.python} has torch but not optuna; install python3-optuna`);
    const now = Date.now();
    const study: StudyRecord = {
      id: newStudyId(),
      state: 'queued',
      ...dataset,
      experiment: request.experiment ?? DEFAULT_EXPERIMENT,
      request,
      queueJobId: randomUUID(),
      workerHost: null,
      workerPid: null,
      ownerPid: null,
      heartbeatAt: null,
      best: null,
      error: null,
      createdBy: caller.actor,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      finishedAt: null,
    };
    await this.store.createStudy(study);
    await this.#ctx.record(study.id, 1, 'state', { state: 'queued' });
    await this.platform.queue.add(QUEUE_NAME, 'optimize', { kind: 'study', id: study.id } satisfies QueuePayload, { jobId: study.queueJobId! });
    this.platform.audit.record({
      actor: caller.actor,
      action: 'training.study.start',
      resource: `training-study:${study.id}`,
      requestId: caller.requestId ?? null,
      service: SERVICE_NAME,
      details: { n_trials: request.n_trials, pruner: request.pruner, search_space: request.search_space },
    });
    return study;
  }

  async getStudy(id: string): Promise<{ study: StudyRecord; trials: TrialRecord[] }> {
    const study = await this.store.requireStudy(id);
    return { study, trials: await this.store.listTrials(id) };
  }

  listStudies(query: PageRequest): Promise<Page<StudyRecord>> {
    return this.store.listStudies(query);
  }

  /** Cancels a study (queued: at once; running: the worker stops after checkpointing its trials). */
  async cancelStudy(id: string, caller: Caller): Promise<StudyRecord> {
    const study = await this.store.requireStudy(id);
    if (study.state === 'queued') {
      if (await this.store.updateStudy(id, { state: 'cancelled', finishedAt: Date.now() }, ['queued'])) {
        await this.#ctx.record(id, 1, 'state', { state: 'cancelled' });
      } else return this.cancelStudy(id, caller);
    } else if (study.state === 'running') {
      if (!stopActive(this.#ctx, id, 'cancel')) await this.platform.events.publish(CANCEL_TOPIC, { id, reason: 'cancel' });
    } else throw new AppError('CONFLICT', `study '${id}' is already ${study.state}`);
    this.platform.audit.record({
      actor: caller.actor,
      action: 'training.study.cancel',
      resource: `training-study:${id}`,
      requestId: caller.requestId ?? null,
      service: SERVICE_NAME,
      details: { was: study.state },
    });
    return this.store.requireStudy(id);
  }

  /**
   * Experiments from the tracking store; without one, the experiments named by jobs here.
   */
  async listExperiments(page: PageRequest): Promise<Page<ExperimentSummary> & { source: string }> {
    if (this.#tracker.kind !== 'none') return { ...(await this.#tracker.listExperiments(page)), source: 'tracking' };
    const names = new Map<string, { first: number; last: number }>();
    for (let token: string | undefined, first = true; first || token; first = false) {
      const jobs = await this.store.listJobs({ pageSize: 1000, pageToken: token });
      token = jobs.nextPageToken;
      for (const j of jobs.items) {
        const e = names.get(j.experiment) ?? { first: j.createdAt, last: j.updatedAt };
        names.set(j.experiment, { first: Math.min(e.first, j.createdAt), last: Math.max(e.last, j.updatedAt) });
      }
    }
    const items = [...names.entries()].map(([name, t]) => ({ experiment_id: name, name, creation_time: t.first, last_update_time: t.last, tags: [] }));
    return { items, source: 'training-jobs' };
  }

  /** Runs of one experiment (tracking store only). */
  listRuns(experimentId: string, page: PageRequest) {
    return this.#tracker.listRuns(experimentId, page);
  }

  /**
   * Stops taking work; asks running workers to checkpoint and stop (their jobs become
   * `interrupted`, resumable later) and waits for them, killing any that outlive the grace period.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      if (this.#sweep) clearInterval(this.#sweep);
      const consumer = consumers.get(this.platform);
      if (consumer?.service === this) consumer.service = null;
      await this.#unsubscribe?.().catch(() => {});
      const active = [...this.#ctx.active.entries()];
      for (const [id] of active) stopActive(this.#ctx, id, 'shutdown');
      const all = Promise.allSettled(active.map(([, a]) => a.done));
      const grace = this.#options.shutdownGraceMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), grace)))]);
      clearTimeout(timer);
      if (timedOut) {
        for (const [, a] of active) a.handle?.kill();
        await all;
      }
    })();
    return this.#closing;
  }
}

/**
 * A model serves images preprocessed at its dataset's size, so it must be trained at that size:
 * refuse an input_size (or an input_size search) that differs, before the job trains a model
 * the deployment would refuse to load.
 */
/** Each process of a distributed job needs at least 2 images of every global batch (BatchNorm). */
function checkDistributed(request: JobRequest): void {
  const processes = request.distributed?.processes ?? 1;
  const batch = Number(request.hyperparameters?.batch_size ?? DEFAULT_BATCH_SIZE);
  if (batch < 2 * processes) {
    throw new AppError('INVALID_INPUT', `hyperparameters.batch_size ${batch} is the global batch: ${processes} processes need at least ${2 * processes} (2 images each)`);
  }
}

function checkInputSize(request: { input_size?: number; search_space?: Record<string, unknown> }, size: number | null, what: string): void {
  if (size === null) return;
  const hint = `its images are preprocessed at ${size}x${size}, and a model serves with its dataset's preprocessing; omit input_size (it defaults to ${size}) or make a dataset version at the size you want`;
  if (request.input_size !== undefined && request.input_size !== size) {
    throw new AppError('INVALID_INPUT', `input_size ${request.input_size} does not match ${what}: ${hint}`);
  }
  const searched = request.search_space?.input_size as { type?: string; choices?: unknown[]; low?: number; high?: number } | undefined;
  if (searched) {
    const values = searched.type === 'categorical' ? (searched.choices ?? []) : [searched.low, searched.high];
    if (values.some((v) => v !== size)) throw new AppError('INVALID_INPUT', `search_space.input_size tries sizes other than ${size} on ${what}: ${hint}`);
  }
}
