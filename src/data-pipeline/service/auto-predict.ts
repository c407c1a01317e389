/**
 * Auto-predict on DICOM arrival (XRAY_DICOM_AUTOPREDICT_MODEL): each instance stored through
 * STOW-RS or C-STORE is predicted by the deployment service over HTTP (the stored, de-identified
 * bytes are sent), and the result goes to XRAY_DICOM_RESULT_DESTINATION as an Enhanced SR plus a
 * Secondary Capture of the heatmap, in the sender's study.
 *
 * Each arrival is a job on the platform queue (local rows or BullMQ), so its state, tries and last
 * error are durable and visible (`GET /dicom/auto-predict/jobs/:id`): a deployment or destination
 * outage is retried with exponential backoff (XRAY_DICOM_AUTOPREDICT_ATTEMPTS / _BACKOFF_MS), and
 * every try that fails is audited. The job itself holds no identifier: the sender's patient/study
 * context, the STOW caller's credential and the built SR/SC live only in this process's memory,
 * keyed by job id. A job that outlives them (the process restarted) fails at once, audited, with
 * a message asking for the instance to be sent again — storing them would store patient data.
 * Under BullMQ each host consumes its own queue, since only it holds its jobs' context.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import sharp from 'sharp';
import type { DicomDestination } from '../../core/config/dicom-network.js';
import { AppError, ERROR_STATUS, isAppError } from '../../core/errors.js';
import { PermanentJobError, type JobQueue, type JobRecord, type QueueJob } from '../../core/queue/index.js';
import { HttpPredictClient } from '../../deployment/client/predict.js';
import type { DataContext } from './context.js';
import { SERVICE_NAME } from './context.js';
import { buildHeatmapSc, buildResultSr, type PredictionSummary, type SourceContext } from './dicom-results.js';
import { cStoreSend, stowSend, type OutgoingObject, type SendResult } from './dicom-send.js';
import type { Arrival } from './dicomweb.js';
import { getImageBytes } from './preprocessed.js';

export interface ArrivalSource {
  channel: 'stow-rs' | 'c-store';
  actor: string;
  requestId?: string;
  /** The STOW-RS caller's credential (used when no XRAY_DICOM_AUTOPREDICT_KEY is set). */
  authorization?: string;
}

export interface AutoPredictOutcome {
  hash: string;
  ok: boolean;
  /** The queue job, when one was made. */
  job?: string;
  attempt?: number;
  error?: { code: string; message: string };
  model?: { name: string; version: string };
  probability?: number;
  label?: string;
  sr?: string;
  sc?: string;
  sent?: SendResult;
}

/** What the queue keeps per arrival: nothing identifying (see the module comment). */
interface AutoPredictJob {
  hash: string;
  channel: ArrivalSource['channel'];
  actor: string;
  requestId?: string;
}

/** A built result object and whether the destination has it. */
interface ResultObject extends OutgoingObject {
  stored: boolean;
}

/** Memory-only state of one job: the sender's context, the caller's credential, the results once built. */
interface Pending {
  context: SourceContext;
  authorization?: string;
  prediction?: { model: { name: string; version: string }; probability: number; label: string };
  objects?: { sr: ResultObject; sc: ResultObject };
}

/** Jobs whose memory-only state may be held at once (a full backlog is refused, audited). */
const MAX_PENDING = 256;
const CONCURRENCY = 2;

/** The queue this process consumes (see the module comment). */
export function autoPredictQueueName(queue: JobQueue): string {
  return queue.kind === 'bullmq' ? `dicom-autopredict.${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}` : 'dicom-autopredict';
}

/** Retried: the deployment or destination is down, busy or failing (5xx, 429, a network error). */
function retryable(err: unknown): boolean {
  if (err instanceof PermanentJobError) return false;
  if (!isAppError(err)) return true;
  const status = ERROR_STATUS[err.code as keyof typeof ERROR_STATUS] ?? 500;
  return status >= 500 || status === 429;
}

export class AutoPredictor {
  readonly #ctx: DataContext;
  readonly #model: string;
  readonly #destination: DicomDestination;
  readonly #client: HttpPredictClient;
  readonly #key: string;
  readonly #callingAe: string;
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #queue: JobQueue;
  readonly #queueName: string;
  readonly #pending = new Map<string, Pending>();
  readonly #running = new Set<Promise<unknown>>();
  readonly #listeners = new Set<(o: AutoPredictOutcome) => void>();
  #closed = false;

  constructor(ctx: DataContext, opts: { model: string; destination: DicomDestination; deploymentUrl: string; apiKey: string; callingAeTitle: string; attempts: number; backoffMs: number }) {
    this.#ctx = ctx;
    this.#model = opts.model;
    this.#destination = opts.destination;
    this.#client = new HttpPredictClient(opts.deploymentUrl, { transport: ctx.platform.transport });
    this.#key = opts.apiKey;
    this.#callingAe = opts.callingAeTitle;
    this.#attempts = opts.attempts;
    this.#backoffMs = opts.backoffMs;
    this.#queue = ctx.platform.queue;
    this.#queueName = autoPredictQueueName(this.#queue);
  }

  /** Starts consuming this process's auto-predict queue (jobs left by a previous run included). */
  async start(): Promise<void> {
    await this.#queue.process<AutoPredictJob>(this.#queueName, (job) => this.#track(this.#run(job)), { concurrency: CONCURRENCY });
  }

  /** Called with every finished job (metrics, tests). Returns an unsubscribe function. */
  onOutcome(fn: (o: AutoPredictOutcome) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Queues a stored DICOM instance for prediction; never throws (a refusal is audited as a failure). */
  submit(arrival: Arrival, source: ArrivalSource): void {
    const hash = arrival.result.hash;
    if (!hash || arrival.result.format !== 'dicom' || arrival.result.status === 'rejected') return;
    if (this.#closed || this.#pending.size >= MAX_PENDING) {
      this.#final(source, { hash, ok: false, error: { code: 'QUEUE_FULL', message: this.#closed ? 'the service is shutting down' : `more than ${MAX_PENDING} arrivals wait for auto-predict` } });
      return;
    }
    let context: SourceContext;
    try {
      context = sourceContext(arrival);
    } catch (err) {
      this.#final(source, { hash, ok: false, error: errorOf(err) });
      return;
    }
    const id = `autopredict-${hash.slice(0, 16)}-${randomUUID()}`;
    this.#pending.set(id, { context, ...(source.authorization ? { authorization: source.authorization } : {}) });
    const data: AutoPredictJob = { hash, channel: source.channel, actor: source.actor, ...(source.requestId ? { requestId: source.requestId } : {}) };
    this.#track(
      this.#queue.add(this.#queueName, 'autopredict', data, { jobId: id, attempts: this.#attempts, backoffMs: this.#backoffMs }).catch((err: unknown) => {
        this.#pending.delete(id);
        this.#final(source, { hash, ok: false, error: errorOf(err) });
      }),
    );
  }

  /** One job's durable record (state, tries, next retry, last error), or null. */
  job(id: string): Promise<JobRecord<AutoPredictJob> | null> {
    return this.#queue.get<AutoPredictJob>(this.#queueName, id);
  }

  /** Settings and job counts by state on this process's queue (GET /dicom/auto-predict). */
  async status(): Promise<{ model: string; destination: string; attempts: number; backoff_ms: number; pending: number; jobs: Awaited<ReturnType<JobQueue['counts']>> }> {
    const dest = this.#destination;
    return {
      model: this.#model,
      destination: dest.kind === 'stow' ? dest.url : `${dest.aeTitle}@${dest.host}:${dest.port}`,
      attempts: this.#attempts,
      backoff_ms: this.#backoffMs,
      pending: this.#pending.size,
      jobs: await this.#queue.counts(this.#queueName),
    };
  }

  /**
   * Waits up to `timeoutMs` for jobs whose context this process holds to finish, then refuses new
   * ones. Jobs still waiting (a retry later) stay queued; their memory-only context is lost.
   */
  async close(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#running.size && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.#running]), new Promise((r) => setTimeout(r, 100))]);
    }
    this.#closed = true;
  }

  /** Jobs this process holds context for (queued, running or waiting for a retry). */
  get pending(): number {
    return this.#pending.size;
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#running.add(p);
    void p.finally(() => this.#running.delete(p)).catch(() => {});
    return p;
  }

  async #run(job: QueueJob<AutoPredictJob>): Promise<unknown> {
    const { hash } = job.data;
    const source: ArrivalSource = { channel: job.data.channel, actor: job.data.actor, ...(job.data.requestId ? { requestId: job.data.requestId } : {}) };
    const outcome: AutoPredictOutcome = { hash, ok: false, job: job.id, attempt: job.attempt };
    const pending = this.#pending.get(job.id);
    try {
      if (!pending) {
        throw new PermanentJobError(
          "the sender's study context is kept in memory only (patient data is never stored) and this process no longer holds it (it restarted after the arrival): no result was sent; send the instance again",
        );
      }
      await this.#predictAndBuild(pending, source, outcome);
      const objects = pending.objects!;
      const todo = [objects.sr, objects.sc].filter((o) => !o.stored);
      const dest = this.#destination;
      const sent = dest.kind === 'stow'
        ? await stowSend(dest.url, todo)
        : await cStoreSend(dest, todo, { callingAeTitle: this.#callingAe });
      for (const o of todo) if (sent.stored.includes(o.sopInstanceUid)) o.stored = true;
      outcome.sent = sent;
      if (sent.failed.length) {
        throw new AppError('SERVICE_UNAVAILABLE', `the destination refused ${sent.failed.length} of ${todo.length} result objects (${sent.failed.map((f) => f.reason).join(', ')})`);
      }
      outcome.ok = true;
    } catch (err) {
      outcome.error = errorOf(err);
      if (!isAppError(err) && !(err instanceof PermanentJobError)) this.#ctx.platform.logger.error({ err, hash, job: job.id }, 'auto-predict failed unexpectedly');
      const last = !retryable(err) || job.attempt >= this.#attempts;
      if (!last) {
        this.#audit(source, outcome, { retrying: true });
        throw err;
      }
      this.#pending.delete(job.id);
      this.#final(source, outcome);
      throw err instanceof PermanentJobError ? err : new PermanentJobError(outcome.error.message);
    }
    this.#pending.delete(job.id);
    this.#final(source, outcome);
    return { model: outcome.model, probability: outcome.probability, label: outcome.label, sr_sop_instance_uid: outcome.sr, sc_sop_instance_uid: outcome.sc };
  }

  /** Predicts once and builds the SR and SC once per job: a retry resends the same objects. */
  async #predictAndBuild(pending: Pending, source: ArrivalSource, outcome: AutoPredictOutcome): Promise<void> {
    if (!pending.prediction || !pending.objects) {
      const bytes = await getImageBytes(this.#ctx, outcome.hash);
      const authorization = this.#key ? `Bearer ${this.#key}` : pending.authorization;
      const prediction = await this.#client.predict(bytes, {
        model: this.#model,
        inlineHeatmap: true,
        contentType: 'application/dicom',
        authorization,
        requestId: source.requestId,
      });
      if (!prediction.heatmap_png_base64) throw new AppError('INTERNAL', 'the deployment returned no inline heatmap');
      const { data, info } = await sharp(Buffer.from(prediction.heatmap_png_base64, 'base64')).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new AppError('INTERNAL', `the heatmap has ${info.channels} channels, not 3`);
      const summary: PredictionSummary = {
        probability: prediction.probability,
        label: prediction.label,
        threshold: prediction.threshold,
        modelName: prediction.model.name,
        modelVersion: prediction.model.version,
      };
      const sr = buildResultSr(pending.context, summary);
      const sc = buildHeatmapSc(pending.context, summary, { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height });
      pending.prediction = { model: prediction.model, probability: prediction.probability, label: prediction.label };
      pending.objects = {
        sr: { sopInstanceUid: sr.sopInstanceUid, bytes: sr.bytes, stored: false },
        sc: { sopInstanceUid: sc.sopInstanceUid, bytes: sc.bytes, stored: false },
      };
    }
    outcome.model = pending.prediction.model;
    outcome.probability = pending.prediction.probability;
    outcome.label = pending.prediction.label;
    outcome.sr = pending.objects.sr.sopInstanceUid;
    outcome.sc = pending.objects.sc.sopInstanceUid;
  }

  /** Audits a job's end and tells the listeners. */
  #final(source: ArrivalSource, o: AutoPredictOutcome): void {
    this.#audit(source, o, { retrying: false });
    if (!o.ok) this.#ctx.platform.logger.warn({ hash: o.hash, job: o.job, error: o.error }, 'auto-predict result not delivered');
    for (const fn of this.#listeners) fn(o);
  }

  #audit(source: ArrivalSource, o: AutoPredictOutcome, { retrying }: { retrying: boolean }): void {
    const dest = this.#destination;
    this.#ctx.platform.audit.record({
      actor: source.actor,
      action: 'dicom.autopredict',
      resource: `image:${o.hash}`,
      outcome: o.ok ? 'success' : 'failure',
      requestId: source.requestId ?? null,
      service: SERVICE_NAME,
      details: {
        channel: source.channel,
        ...(o.job ? { job: o.job, attempt: o.attempt, of: this.#attempts } : {}),
        ...(o.ok ? {} : { retrying }),
        model: o.model ?? { name: this.#model },
        ...(o.probability !== undefined ? { probability: o.probability, label: o.label } : {}),
        destination: dest.kind === 'stow' ? { kind: 'stow-rs', url: dest.url } : { kind: 'c-store', ae: `${dest.aeTitle}@${dest.host}:${dest.port}` },
        ...(o.sr ? { sr_sop_instance_uid: o.sr, sc_sop_instance_uid: o.sc } : {}),
        ...(o.sent ? { stored: o.sent.stored.length, failed: o.sent.failed } : {}),
        ...(o.error ? { error: o.error.code, message: o.error.message.slice(0, 300) } : {}),
      },
    });
  }
}

function errorOf(err: unknown): { code: string; message: string } {
  if (isAppError(err)) return { code: err.code, message: err.message };
  if (err instanceof PermanentJobError) return { code: 'CONTEXT_LOST', message: err.message };
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/**
 * The study a result goes into: the sender's own (patient module, study and image UIDs, kept in
 * memory for this round trip) when known, else the stored de-identified one.
 */
function sourceContext(arrival: Arrival): SourceContext {
  const o = arrival.dicom?.original;
  const u = arrival.dicom?.uids;
  const pick = o?.studyUid && o.seriesUid && o.sopInstanceUid && o.sopClassUid ? o : null;
  if (pick) {
    return {
      studyUid: pick.studyUid!,
      seriesUid: pick.seriesUid!,
      sopInstanceUid: pick.sopInstanceUid!,
      sopClassUid: pick.sopClassUid!,
      patientName: pick.patientName,
      patientId: pick.patientId,
      patientBirthDate: pick.patientBirthDate,
      patientSex: pick.patientSex,
      studyDate: pick.studyDate,
      studyTime: pick.studyTime,
      studyId: pick.studyId,
      accessionNumber: pick.accessionNumber,
      referringPhysicianName: pick.referringPhysicianName,
    };
  }
  if (!u?.studyUid || !u.seriesUid || !u.sopInstanceUid || !u.sopClassUid) throw new AppError('UNPROCESSABLE', 'the instance has no Study/Series/SOP Instance UID to attach a result to');
  return {
    studyUid: u.studyUid,
    seriesUid: u.seriesUid,
    sopInstanceUid: u.sopInstanceUid,
    sopClassUid: u.sopClassUid,
    patientName: null,
    patientId: arrival.result.patient_id ?? null,
    patientBirthDate: null,
    patientSex: null,
    studyDate: null,
    studyTime: null,
    studyId: null,
    accessionNumber: null,
    referringPhysicianName: null,
  };
}
