/**
 * Auto-predict on DICOM arrival (XRAY_DICOM_AUTOPREDICT_MODEL): each instance stored through
 * STOW-RS or C-STORE is predicted by the deployment service over HTTP (the stored, de-identified
 * bytes are sent), and the result goes to XRAY_DICOM_RESULT_DESTINATION as an Enhanced SR plus a
 * Secondary Capture of the heatmap, in the sender's study. The sender's patient/study context
 * lives only in this job's memory; logs and the audit trail name the image by its hash.
 * Jobs run in the background, a few at a time, with a bounded backlog; close() lets them finish.
 */
import sharp from 'sharp';
import type { DicomDestination } from '../../core/config/dicom-network.js';
import { AppError, isAppError } from '../../core/errors.js';
import { HttpPredictClient } from '../../deployment/client/predict.js';
import type { DataContext } from './context.js';
import { SERVICE_NAME } from './context.js';
import { buildHeatmapSc, buildResultSr, type PredictionSummary, type SourceContext } from './dicom-results.js';
import { cStoreSend, stowSend, type SendResult } from './dicom-send.js';
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
  error?: { code: string; message: string };
  model?: { name: string; version: string };
  probability?: number;
  label?: string;
  sr?: string;
  sc?: string;
  sent?: SendResult;
}

const MAX_BACKLOG = 256;
const CONCURRENCY = 2;

export class AutoPredictor {
  readonly #ctx: DataContext;
  readonly #model: string;
  readonly #destination: DicomDestination;
  readonly #client: HttpPredictClient;
  readonly #key: string;
  readonly #callingAe: string;
  readonly #backlog: (() => Promise<void>)[] = [];
  readonly #running = new Set<Promise<void>>();
  readonly #listeners = new Set<(o: AutoPredictOutcome) => void>();
  #closed = false;

  constructor(ctx: DataContext, opts: { model: string; destination: DicomDestination; deploymentUrl: string; apiKey: string; callingAeTitle: string }) {
    this.#ctx = ctx;
    this.#model = opts.model;
    this.#destination = opts.destination;
    this.#client = new HttpPredictClient(opts.deploymentUrl, { transport: ctx.platform.transport });
    this.#key = opts.apiKey;
    this.#callingAe = opts.callingAeTitle;
  }

  /** Called with every finished job (metrics, tests). Returns an unsubscribe function. */
  onOutcome(fn: (o: AutoPredictOutcome) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Queues a stored DICOM instance for prediction; never throws (a full backlog is audited as a failure). */
  submit(arrival: Arrival, source: ArrivalSource): void {
    const hash = arrival.result.hash;
    if (!hash || arrival.result.format !== 'dicom' || arrival.result.status === 'rejected') return;
    if (this.#closed || this.#backlog.length >= MAX_BACKLOG) {
      this.#finish(source, { hash, ok: false, error: { code: 'QUEUE_FULL', message: this.#closed ? 'the service is shutting down' : `more than ${MAX_BACKLOG} arrivals wait for auto-predict` } });
      return;
    }
    this.#backlog.push(() => this.#run(arrival, source));
    this.#pump();
  }

  /** Waits for queued and running jobs (at most `timeoutMs`), then refuses new ones. */
  async close(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.#backlog.length || this.#running.size) && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.#running]), new Promise((r) => setTimeout(r, 100))]);
    }
    this.#closed = true;
  }

  /** Jobs queued or running. */
  get pending(): number {
    return this.#backlog.length + this.#running.size;
  }

  #pump(): void {
    while (this.#running.size < CONCURRENCY && this.#backlog.length) {
      const job = this.#backlog.shift()!;
      const p = job().finally(() => {
        this.#running.delete(p);
        this.#pump();
      });
      this.#running.add(p);
    }
  }

  async #run(arrival: Arrival, source: ArrivalSource): Promise<void> {
    const hash = arrival.result.hash!;
    const outcome: AutoPredictOutcome = { hash, ok: false };
    try {
      const bytes = await getImageBytes(this.#ctx, hash);
      const authorization = this.#key ? `Bearer ${this.#key}` : source.authorization;
      const prediction = await this.#client.predict(bytes, {
        model: this.#model,
        inlineHeatmap: true,
        contentType: 'application/dicom',
        authorization,
        requestId: source.requestId,
      });
      outcome.model = prediction.model;
      outcome.probability = prediction.probability;
      outcome.label = prediction.label;
      if (!prediction.heatmap_png_base64) throw new AppError('INTERNAL', 'the deployment returned no inline heatmap');
      const { data, info } = await sharp(Buffer.from(prediction.heatmap_png_base64, 'base64')).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new AppError('INTERNAL', `the heatmap has ${info.channels} channels, not 3`);
      const src = sourceContext(arrival, this.#ctx);
      const summary: PredictionSummary = {
        probability: prediction.probability,
        label: prediction.label,
        threshold: prediction.threshold,
        modelName: prediction.model.name,
        modelVersion: prediction.model.version,
      };
      const sr = buildResultSr(src, summary);
      const sc = buildHeatmapSc(src, summary, { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height });
      outcome.sr = sr.sopInstanceUid;
      outcome.sc = sc.sopInstanceUid;
      const objects = [sr, sc].map((o) => ({ sopInstanceUid: o.sopInstanceUid, bytes: o.bytes }));
      const dest = this.#destination;
      outcome.sent = dest.kind === 'stow' ? await stowSend(dest.url, objects) : await cStoreSend(dest, objects, { callingAeTitle: this.#callingAe });
      outcome.ok = outcome.sent.failed.length === 0;
      if (!outcome.ok) outcome.error = { code: 'SERVICE_UNAVAILABLE', message: `the destination refused ${outcome.sent.failed.length} of 2 result objects` };
    } catch (err) {
      outcome.error = isAppError(err) ? { code: err.code, message: err.message } : { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
      if (!isAppError(err)) this.#ctx.platform.logger.error({ err, hash }, 'auto-predict failed unexpectedly');
    }
    this.#finish(source, outcome);
  }

  #finish(source: ArrivalSource, o: AutoPredictOutcome): void {
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
        model: o.model ?? { name: this.#model },
        ...(o.probability !== undefined ? { probability: o.probability, label: o.label } : {}),
        destination: dest.kind === 'stow' ? { kind: 'stow-rs', url: dest.url } : { kind: 'c-store', ae: `${dest.aeTitle}@${dest.host}:${dest.port}` },
        ...(o.sr ? { sr_sop_instance_uid: o.sr, sc_sop_instance_uid: o.sc } : {}),
        ...(o.sent ? { stored: o.sent.stored.length, failed: o.sent.failed } : {}),
        ...(o.error ? { error: o.error.code, message: o.error.message.slice(0, 300) } : {}),
      },
    });
    if (!o.ok) this.#ctx.platform.logger.warn({ hash: o.hash, error: o.error }, 'auto-predict result not delivered');
    for (const fn of this.#listeners) fn(o);
  }
}

/**
 * The study a result goes into: the sender's own (patient module, study and image UIDs, kept in
 * memory for this round trip) when known, else the stored de-identified one.
 */
function sourceContext(arrival: Arrival, _ctx: DataContext): SourceContext {
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
