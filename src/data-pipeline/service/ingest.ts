import path from 'node:path';
import { AppError, isAppError } from '../../core/errors.js';
import { contentKey, sha256Hex } from '../../core/objects/index.js';
import { requireFormat, type ImageFormat } from '../../core/imaging/index.js';
import type { AnonymisedDicom } from '../../core/imaging/image-pool.js';
import type { ImageRecord, Label, PatientSource, Split } from '../store/types.js';
import { NAMESPACES, SERVICE_NAME, type DataContext } from './context.js';
import { patientIdFromFileName } from './patient-id.js';

export interface IngestInput {
  bytes: Buffer;
  /** Original file name (directories are dropped). */
  fileName: string;
  label: Label;
  /** Given patient id; else derived from a DICOM Patient ID (salted hash) or a Kermany file name. */
  patientId?: string | null;
  split?: Split | null;
  /** Who ingests (audit and the image row). */
  actor: string;
  /** Record this file in the audit trail (uploads; folder imports audit once per job). */
  audit?: { requestId?: string };
  /**
   * DICOM network arrivals (STOW-RS, C-STORE): called once the file is de-identified, with its
   * de-identified UIDs and — when `keepOriginal` — the sender's patient/study context, which must
   * stay in memory (never stored or logged).
   */
  onDicom?: (dicom: Pick<AnonymisedDicom, 'uids' | 'original'>) => void;
  keepOriginal?: boolean;
}

export type IngestStatus = 'ingested' | 'duplicate' | 'rejected';

/** Per-file outcome, as the API reports it. */
export interface IngestResult {
  file: string;
  status: IngestStatus;
  hash?: string;
  format?: ImageFormat;
  label?: Label;
  patient_id?: string | null;
  width?: number;
  height?: number;
  /** Quality warnings (codes) stored with the image. */
  quality_flags?: string[];
  /** Things to look at that did not stop the ingest (e.g. DICOM burned-in annotation). */
  warnings?: string[];
  /** For a duplicate whose earlier label differs: that label (validation reports it). */
  label_conflict_with?: Label;
  error?: { code: string; message: string };
}

const EXTENSION: Readonly<Record<ImageFormat, string>> = { png: '.png', jpeg: '.jpg', dicom: '.dcm' };

/** Serialises the store-then-insert of the same content within this process. */
const inFlight = new Map<string, Promise<unknown>>();

async function withHashLock<T>(hash: string, fn: () => Promise<T>): Promise<T> {
  while (inFlight.has(hash)) await inFlight.get(hash)!.catch(() => {});
  const run = fn();
  inFlight.set(hash, run);
  try {
    return await run;
  } finally {
    inFlight.delete(hash);
  }
}

function cleanPatientId(id: string | null | undefined): string | null {
  if (id === null || id === undefined) return null;
  const trimmed = id.trim();
  if (trimmed === '') return null;
  if (trimmed.length > 128 || [...trimmed].some((c) => c.charCodeAt(0) < 0x20)) throw new AppError('INVALID_INPUT', 'patient_id must be 1–128 printable characters');
  return trimmed;
}

/**
 * Ingests one file: sniff → (DICOM: header rules, then anonymise; only the anonymised bytes go
 * further) → full decode and quality gates (both in the image worker pool, off the event loop) → content-addressed object write → one DB row. Identical stored bytes are a
 * duplicate (the sighting is recorded, nothing is stored twice). Never throws for a bad file: the
 * result says `rejected` with a code and message, and nothing is left behind for it.
 */
export async function ingestFile(ctx: DataContext, input: IngestInput): Promise<IngestResult> {
  const result = await ingestOne(ctx, input);
  for (const listen of ctx.ingestListeners) listen(result.status, result.format);
  if (input.audit) {
    ctx.platform.audit.record({
      actor: input.actor,
      action: 'data.ingest',
      resource: result.hash ? `image:${result.hash}` : `upload:${result.file}`,
      outcome: result.status === 'rejected' ? 'failure' : 'success',
      requestId: input.audit.requestId ?? null,
      service: SERVICE_NAME,
      details: {
        // DICOM names are not kept (they often carry UIDs or names); the hash identifies the image.
        file: result.format === 'dicom' || /\.dcm$/i.test(result.file) ? null : result.file,
        status: result.status,
        label: input.label,
        ...(result.error ? { error: result.error.code } : {}),
      },
    });
  }
  return result;
}

async function ingestOne(ctx: DataContext, input: IngestInput): Promise<IngestResult> {
  const file = path.basename(input.fileName || 'upload').slice(0, 255) || 'upload';
  try {
    if (input.bytes.length > ctx.platform.config.maxUploadBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `file is ${input.bytes.length} bytes, above the ${ctx.platform.config.maxUploadBytes}-byte limit`);
    }
    const format = requireFormat(input.bytes);
    let stored = input.bytes;
    let patientId = cleanPatientId(input.patientId);
    let patientSource: PatientSource = patientId ? 'given' : 'none';
    const warnings: string[] = [];
    let dicomUids: AnonymisedDicom['uids'] | null = null;
    if (format === 'dicom') {
      const anon = await ctx.pool.anonymise(input.bytes, await ctx.patientSalt(), { keepOriginal: input.keepOriginal === true });
      dicomUids = anon.uids;
      input.onDicom?.({ uids: anon.uids, ...(anon.original ? { original: anon.original } : {}) });
      stored = Buffer.from(anon.bytes.buffer, anon.bytes.byteOffset, anon.bytes.byteLength);
      warnings.push(...anon.warnings);
      if (!patientId && anon.patientHash) {
        patientId = anon.patientHash;
        patientSource = 'dicom';
      }
    }
    if (!patientId) {
      patientId = patientIdFromFileName(file);
      if (patientId) patientSource = 'filename';
    }
    const hash = sha256Hex(stored);
    // DICOM file names are often UIDs or patient names: storage keeps a pseudonym instead.
    const sourceName = format === 'dicom' ? `${hash.slice(0, 16)}.dcm` : file;
    const now = Date.now();
    const sighting = { hash, sourceName, label: input.label, patientId, split: input.split ?? null, ingestedAt: now };
    // Known bytes need no decoding: a re-import only records the sighting.
    const known = await ctx.images.get(hash);
    if (known) {
      await ctx.images.addSource(sighting);
      await recordDicomUids(ctx, hash, dicomUids, now);
      return duplicateResult({ file, status: 'duplicate', label: input.label, ...(warnings.length ? { warnings } : {}) }, known);
    }
    const analysis = await ctx.pool.analyse(stored);
    const base: IngestResult = {
      file,
      status: 'ingested',
      hash,
      format,
      label: input.label,
      patient_id: patientId,
      width: analysis.width,
      height: analysis.height,
      quality_flags: analysis.qualityFlags,
      ...(warnings.length ? { warnings } : {}),
    };

    return await withHashLock(hash, async () => {
      const existing = await ctx.images.get(hash);
      if (existing) {
        await ctx.images.addSource(sighting);
        await recordDicomUids(ctx, hash, dicomUids, now);
        return duplicateResult(base, existing);
      }
      const key = contentKey(NAMESPACES.images, hash, EXTENSION[format]);
      const objects = ctx.platform.objects;
      const existed = await objects.exists(key);
      if (!existed) await objects.put(key, stored, format === 'dicom' ? 'application/dicom' : `image/${format}`);
      const record: ImageRecord = {
        hash,
        objectKey: key,
        sizeBytes: stored.length,
        sourceName,
        label: input.label,
        patientId,
        patientSource,
        split: input.split ?? null,
        format,
        modality: analysis.modality,
        width: analysis.width,
        height: analysis.height,
        bitDepth: analysis.bitDepth,
        photometric: analysis.photometric,
        stats: analysis.stats,
        phash: analysis.phash,
        qualityFlags: analysis.qualityFlags,
        ingestedAt: now,
        ingestedBy: input.actor,
      };
      let inserted: boolean;
      try {
        inserted = await ctx.images.insert(record);
      } catch (err) {
        // Nothing refers to the object: remove it unless it was there before.
        if (!existed) await objects.delete(key).catch(() => {});
        throw err;
      }
      if (!inserted) {
        const other = await ctx.images.require(hash);
        await ctx.images.addSource(sighting);
        await recordDicomUids(ctx, hash, dicomUids, now);
        return duplicateResult(base, other);
      }
      await recordDicomUids(ctx, hash, dicomUids, now);
      return base;
    });
  } catch (err) {
    if (isAppError(err)) return { file, status: 'rejected', error: { code: err.code, message: err.message } };
    ctx.platform.logger.error({ err, file }, 'ingest failed unexpectedly');
    return { file, status: 'rejected', error: { code: 'INTERNAL', message: `could not ingest: ${(err as Error)?.message ?? String(err)}` } };
  }
}

/** The de-identified UIDs of a stored DICOM image, for QIDO-RS (files without them are not listed). */
async function recordDicomUids(ctx: DataContext, hash: string, uids: AnonymisedDicom['uids'] | null, now: number): Promise<void> {
  if (!uids?.studyUid || !uids.seriesUid || !uids.sopInstanceUid || !uids.sopClassUid) return;
  await ctx.dicom.record({
    hash,
    studyUid: uids.studyUid,
    seriesUid: uids.seriesUid,
    sopInstanceUid: uids.sopInstanceUid,
    sopClassUid: uids.sopClassUid,
    modality: uids.modality,
    receivedAt: now,
  });
}

function duplicateResult(base: IngestResult, existing: ImageRecord): IngestResult {
  return {
    ...base,
    status: 'duplicate',
    hash: existing.hash,
    format: existing.format,
    patient_id: existing.patientId,
    width: existing.width,
    height: existing.height,
    quality_flags: existing.qualityFlags,
    ...(existing.label !== base.label ? { label_conflict_with: existing.label } : {}),
  };
}
