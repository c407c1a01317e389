import type { Kysely, Selectable } from 'kysely';
import type { Database } from '../../core/db/index.js';
import { isUniqueViolation } from '../../core/db/database.js';
import { AppError } from '../../core/errors.js';
import type { TrainingJobsTable, TrainingStudiesTable, TrainingTables, TrainingTrialsTable } from './tables.js';
import type {
  EpochRecord,
  JobRecord,
  JobState,
  Page,
  PageRequest,
  StoredEvent,
  StudyRecord,
  StudyState,
  TrialRecord,
} from './types.js';

export type JobPatch = Partial<Omit<JobRecord, 'id' | 'createdAt' | 'createdBy' | 'request'>>;
export type StudyPatch = Partial<Omit<StudyRecord, 'id' | 'createdAt' | 'createdBy' | 'request'>>;
export type TrialPatch = Partial<Omit<TrialRecord, 'studyId' | 'trial' | 'updatedAt'>>;

/**
 * Training jobs, their events and epochs, and hyper-parameter studies with their trials.
 * Conditional updates (`onlyIn`) let concurrent actors (the queue worker, a cancel request, the
 * restart recovery) change a job's state without overwriting each other.
 */
export interface TrainingStore {
  /** Inserts a new job. @throws AppError ALREADY_EXISTS when the id is taken. */
  createJob(job: JobRecord): Promise<void>;
  /** The job, or null. */
  getJob(id: string): Promise<JobRecord | null>;
  /** The job. @throws AppError NOT_FOUND when absent. */
  requireJob(id: string): Promise<JobRecord>;
  /** Jobs newest first, optionally only some states; paged (opaque token). */
  listJobs(query?: PageRequest & { states?: readonly JobState[] }): Promise<Page<JobRecord>>;
  /**
   * Applies `patch` (and bumps updated_at). With `onlyIn`, only when the job's state is one of
   * those. Returns whether a row changed.
   */
  updateJob(id: string, patch: JobPatch, onlyIn?: readonly JobState[]): Promise<boolean>;
  /** Number of jobs per state (every state present, zero when none). */
  countJobs(): Promise<Record<JobState, number>>;

  /** Appends an event to the log of a job or study; returns its sequence number (1, 2, …). */
  appendEvent(ownerId: string, attempt: number, event: string, data: Record<string, unknown>): Promise<number>;
  /** Events with seq > afterSeq, oldest first, at most `limit` (default 500). */
  listEvents(ownerId: string, afterSeq?: number, limit?: number): Promise<StoredEvent[]>;

  /** Records an epoch's metrics (a resumed attempt that repeats an epoch replaces it). */
  putEpoch(jobId: string, epoch: number, attempt: number, metrics: Record<string, unknown>): Promise<void>;
  /** Every recorded epoch of a job, in order. */
  listEpochs(jobId: string): Promise<EpochRecord[]>;

  /** Inserts a study. @throws AppError ALREADY_EXISTS when the id is taken. */
  createStudy(study: StudyRecord): Promise<void>;
  getStudy(id: string): Promise<StudyRecord | null>;
  /** @throws AppError NOT_FOUND when absent. */
  requireStudy(id: string): Promise<StudyRecord>;
  listStudies(query?: PageRequest & { states?: readonly StudyState[] }): Promise<Page<StudyRecord>>;
  updateStudy(id: string, patch: StudyPatch, onlyIn?: readonly StudyState[]): Promise<boolean>;
  /** Creates or updates one trial of a study. */
  putTrial(studyId: string, trial: number, patch: TrialPatch): Promise<void>;
  /** The study's trials by number. */
  listTrials(studyId: string): Promise<TrialRecord[]>;
}

const JOB_JSON = ['request', 'progress', 'current', 'info', 'last_checkpoint', 'artifacts', 'metrics', 'test_metrics', 'parity', 'registered'] as const;

const JOB_COLUMNS: Record<keyof JobPatch, keyof TrainingJobsTable> = {
  state: 'state',
  datasetVersion: 'dataset_version',
  datasetDir: 'dataset_dir',
  model: 'model',
  inputSize: 'input_size',
  experiment: 'experiment',
  attempt: 'attempt',
  queueJobId: 'queue_job_id',
  workerHost: 'worker_host',
  workerPid: 'worker_pid',
  ownerPid: 'owner_pid',
  heartbeatAt: 'heartbeat_at',
  progress: 'progress',
  current: 'current',
  info: 'info',
  lastCheckpoint: 'last_checkpoint',
  artifacts: 'artifacts',
  metrics: 'metrics',
  testMetrics: 'test_metrics',
  parity: 'parity',
  threshold: 'threshold',
  bestEpoch: 'best_epoch',
  bestValAuc: 'best_val_auc',
  imagesPerSec: 'images_per_sec',
  runId: 'run_id',
  registered: 'registered',
  error: 'error',
  updatedAt: 'updated_at',
  attemptStartedAt: 'attempt_started_at',
  finishedAt: 'finished_at',
};

const STUDY_COLUMNS: Record<keyof StudyPatch, keyof TrainingStudiesTable> = {
  state: 'state',
  datasetVersion: 'dataset_version',
  datasetDir: 'dataset_dir',
  experiment: 'experiment',
  queueJobId: 'queue_job_id',
  workerHost: 'worker_host',
  workerPid: 'worker_pid',
  ownerPid: 'owner_pid',
  heartbeatAt: 'heartbeat_at',
  best: 'best',
  error: 'error',
  updatedAt: 'updated_at',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
};

const TRIAL_COLUMNS: Record<keyof TrialPatch, keyof TrainingTrialsTable> = {
  state: 'state',
  value: 'value',
  params: 'params',
  history: 'history',
  prunedEpoch: 'pruned_epoch',
  bestEpoch: 'best_epoch',
  metrics: 'metrics',
  runId: 'run_id',
  error: 'error',
};

const JSON_COLUMNS = new Set<string>([...JOB_JSON, 'best', 'params', 'history']);

function parse<T>(text: string | null): T | null {
  return text === null || text === undefined ? null : (JSON.parse(text) as T);
}

const optNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Maps a camelCase patch to column values (JSON columns encoded). */
function toColumns<P extends object>(patch: P, columns: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const column = columns[key];
    if (!column) throw new Error(`unknown field '${key}'`);
    out[column] = JSON_COLUMNS.has(column) && value !== null ? JSON.stringify(value) : value;
  }
  return out;
}

function toJob(row: Selectable<TrainingJobsTable>): JobRecord {
  return {
    id: row.id,
    state: row.state as JobState,
    datasetVersion: row.dataset_version,
    datasetDir: row.dataset_dir,
    model: row.model,
    inputSize: optNumber(row.input_size),
    experiment: row.experiment,
    request: JSON.parse(row.request),
    attempt: Number(row.attempt),
    queueJobId: row.queue_job_id,
    workerHost: row.worker_host,
    workerPid: optNumber(row.worker_pid),
    ownerPid: optNumber(row.owner_pid),
    heartbeatAt: optNumber(row.heartbeat_at),
    progress: parse(row.progress),
    current: parse(row.current),
    info: parse(row.info),
    lastCheckpoint: parse(row.last_checkpoint),
    artifacts: parse(row.artifacts) ?? {},
    metrics: parse(row.metrics),
    testMetrics: parse(row.test_metrics),
    parity: parse(row.parity),
    threshold: optNumber(row.threshold),
    bestEpoch: optNumber(row.best_epoch),
    bestValAuc: optNumber(row.best_val_auc),
    imagesPerSec: optNumber(row.images_per_sec),
    runId: row.run_id,
    registered: parse(row.registered),
    error: row.error,
    createdBy: row.created_by ?? 'anonymous',
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    attemptStartedAt: optNumber(row.attempt_started_at),
    finishedAt: optNumber(row.finished_at),
  };
}

function toStudy(row: Selectable<TrainingStudiesTable>): StudyRecord {
  return {
    id: row.id,
    state: row.state as StudyState,
    datasetVersion: row.dataset_version,
    datasetDir: row.dataset_dir,
    experiment: row.experiment,
    request: JSON.parse(row.request),
    queueJobId: row.queue_job_id,
    workerHost: row.worker_host,
    workerPid: optNumber(row.worker_pid),
    ownerPid: optNumber(row.owner_pid),
    heartbeatAt: optNumber(row.heartbeat_at),
    best: parse(row.best),
    error: row.error,
    createdBy: row.created_by ?? 'anonymous',
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    startedAt: optNumber(row.started_at),
    finishedAt: optNumber(row.finished_at),
  };
}

function toTrial(row: Selectable<TrainingTrialsTable>): TrialRecord {
  return {
    studyId: row.study_id,
    trial: Number(row.trial),
    state: row.state as TrialRecord['state'],
    value: optNumber(row.value),
    params: JSON.parse(row.params),
    history: JSON.parse(row.history),
    prunedEpoch: optNumber(row.pruned_epoch),
    bestEpoch: optNumber(row.best_epoch),
    metrics: parse(row.metrics),
    runId: row.run_id,
    error: row.error,
    updatedAt: Number(row.updated_at),
  };
}

function encodeToken(createdAt: number, id: string): string {
  return Buffer.from(`${createdAt}:${id}`).toString('base64url');
}

function decodeToken(token: string): { createdAt: number; id: string } {
  const text = Buffer.from(token, 'base64url').toString();
  const colon = text.indexOf(':');
  const createdAt = Number(text.slice(0, colon));
  const id = text.slice(colon + 1);
  if (colon < 1 || !id || !Number.isFinite(createdAt)) throw new AppError('INVALID_INPUT', 'invalid page_token');
  return { createdAt, id };
}

const clampPage = (n: number | undefined): number => Math.min(Math.max(Math.trunc(n ?? 100), 1), 1000);


/** {@link TrainingStore} on kysely (SQLite and PostgreSQL alike). */
export class KyselyTrainingStore implements TrainingStore {
  readonly #db: Kysely<TrainingTables>;

  constructor(database: Database) {
    this.#db = database.db as Kysely<TrainingTables>;
  }

  async createJob(job: JobRecord): Promise<void> {
    const { id, createdAt, createdBy, request, ...rest } = job;
    try {
      await this.#db
        .insertInto('training_jobs')
        .values({
          id,
          created_at: createdAt,
          created_by: createdBy,
          request: JSON.stringify(request),
          ...(toColumns(rest, JOB_COLUMNS) as Omit<TrainingJobsTable, 'id' | 'created_at' | 'created_by' | 'request'>),
        })
        .execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('ALREADY_EXISTS', `training job '${id}' already exists`);
      throw err;
    }
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const row = await this.#db.selectFrom('training_jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toJob(row) : null;
  }

  async requireJob(id: string): Promise<JobRecord> {
    const job = await this.getJob(id);
    if (!job) throw new AppError('NOT_FOUND', `training job '${id}' does not exist`);
    return job;
  }

  async listJobs(query: PageRequest & { states?: readonly JobState[] } = {}): Promise<Page<JobRecord>> {
    const pageSize = clampPage(query.pageSize);
    let q = this.#db.selectFrom('training_jobs').selectAll();
    if (query.states?.length) q = q.where('state', 'in', [...query.states]);
    if (query.pageToken) {
      const { createdAt, id } = decodeToken(query.pageToken);
      q = q.where((eb) => eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(pageSize + 1).execute();
    const items = rows.slice(0, pageSize).map(toJob);
    const last = items[items.length - 1];
    return rows.length > pageSize && last ? { items, nextPageToken: encodeToken(last.createdAt, last.id) } : { items };
  }

  async updateJob(id: string, patch: JobPatch, onlyIn?: readonly JobState[]): Promise<boolean> {
    const values = toColumns({ ...patch, updatedAt: patch.updatedAt ?? Date.now() }, JOB_COLUMNS);
    let q = this.#db.updateTable('training_jobs').set(values).where('id', '=', id);
    if (onlyIn) q = q.where('state', 'in', [...onlyIn]);
    const result = await q.executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async countJobs(): Promise<Record<JobState, number>> {
    const rows = await this.#db
      .selectFrom('training_jobs')
      .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('state')
      .execute();
    const out: Record<JobState, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, interrupted: 0 };
    for (const r of rows) if (r.state in out) out[r.state as JobState] = Number(r.n);
    return out;
  }

  async appendEvent(ownerId: string, attempt: number, event: string, data: Record<string, unknown>): Promise<number> {
    // One writer per owner at a time (the attempt running it), so max+1 cannot collide; retry once if it does.
    for (let tries = 0; ; tries++) {
      const last = await this.#db
        .selectFrom('training_events')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .where('owner_id', '=', ownerId)
        .executeTakeFirst();
      const seq = Number(last?.seq ?? 0) + 1;
      try {
        await this.#db
          .insertInto('training_events')
          .values({ owner_id: ownerId, seq, attempt, event, data: JSON.stringify(data), time: Date.now() })
          .execute();
        return seq;
      } catch (err) {
        if (tries >= 3 || !isUniqueViolation(err)) throw err;
      }
    }
  }

  async listEvents(ownerId: string, afterSeq = 0, limit = 500): Promise<StoredEvent[]> {
    const rows = await this.#db
      .selectFrom('training_events')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(Math.min(Math.max(limit, 1), 5000))
      .execute();
    return rows.map((r) => ({ seq: Number(r.seq), attempt: Number(r.attempt), event: r.event, data: JSON.parse(r.data), time: Number(r.time) }));
  }

  async putEpoch(jobId: string, epoch: number, attempt: number, metrics: Record<string, unknown>): Promise<void> {
    const values = { job_id: jobId, epoch, attempt, metrics: JSON.stringify(metrics), time: Date.now() };
    await this.#db
      .insertInto('training_epochs')
      .values(values)
      .onConflict((oc) => oc.columns(['job_id', 'epoch']).doUpdateSet({ attempt, metrics: values.metrics, time: values.time }))
      .execute();
  }

  async listEpochs(jobId: string): Promise<EpochRecord[]> {
    const rows = await this.#db.selectFrom('training_epochs').selectAll().where('job_id', '=', jobId).orderBy('epoch').execute();
    return rows.map((r) => ({ epoch: Number(r.epoch), attempt: Number(r.attempt), metrics: JSON.parse(r.metrics), time: Number(r.time) }));
  }

  async createStudy(study: StudyRecord): Promise<void> {
    const { id, createdAt, createdBy, request, ...rest } = study;
    try {
      await this.#db
        .insertInto('training_studies')
        .values({
          id,
          created_at: createdAt,
          created_by: createdBy,
          request: JSON.stringify(request),
          ...(toColumns(rest, STUDY_COLUMNS) as Omit<TrainingStudiesTable, 'id' | 'created_at' | 'created_by' | 'request'>),
        })
        .execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('ALREADY_EXISTS', `study '${id}' already exists`);
      throw err;
    }
  }

  async getStudy(id: string): Promise<StudyRecord | null> {
    const row = await this.#db.selectFrom('training_studies').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toStudy(row) : null;
  }

  async requireStudy(id: string): Promise<StudyRecord> {
    const study = await this.getStudy(id);
    if (!study) throw new AppError('NOT_FOUND', `study '${id}' does not exist`);
    return study;
  }

  async listStudies(query: PageRequest & { states?: readonly StudyState[] } = {}): Promise<Page<StudyRecord>> {
    const pageSize = clampPage(query.pageSize);
    let q = this.#db.selectFrom('training_studies').selectAll();
    if (query.states?.length) q = q.where('state', 'in', [...query.states]);
    if (query.pageToken) {
      const { createdAt, id } = decodeToken(query.pageToken);
      q = q.where((eb) => eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(pageSize + 1).execute();
    const items = rows.slice(0, pageSize).map(toStudy);
    const last = items[items.length - 1];
    return rows.length > pageSize && last ? { items, nextPageToken: encodeToken(last.createdAt, last.id) } : { items };
  }

  async updateStudy(id: string, patch: StudyPatch, onlyIn?: readonly StudyState[]): Promise<boolean> {
    const values = toColumns({ ...patch, updatedAt: patch.updatedAt ?? Date.now() }, STUDY_COLUMNS);
    let q = this.#db.updateTable('training_studies').set(values).where('id', '=', id);
    if (onlyIn) q = q.where('state', 'in', [...onlyIn]);
    const result = await q.executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async putTrial(studyId: string, trial: number, patch: TrialPatch): Promise<void> {
    const now = Date.now();
    const values = toColumns(patch, TRIAL_COLUMNS);
    const existing = await this.#db
      .selectFrom('training_trials')
      .select('trial')
      .where('study_id', '=', studyId)
      .where('trial', '=', trial)
      .executeTakeFirst();
    if (existing) {
      await this.#db
        .updateTable('training_trials')
        .set({ ...values, updated_at: now })
        .where('study_id', '=', studyId)
        .where('trial', '=', trial)
        .execute();
      return;
    }
    await this.#db
      .insertInto('training_trials')
      .values({
        study_id: studyId,
        trial,
        state: 'running',
        params: '{}',
        history: '[]',
        updated_at: now,
        ...(values as Partial<TrainingTrialsTable>),
      })
      .execute();
  }

  async listTrials(studyId: string): Promise<TrialRecord[]> {
    const rows = await this.#db.selectFrom('training_trials').selectAll().where('study_id', '=', studyId).orderBy('trial').execute();
    return rows.map(toTrial);
  }
}
