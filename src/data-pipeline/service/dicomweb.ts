/**
 * DICOMweb on the data pipeline: STOW-RS (store instances sent as multipart/related), a minimal
 * QIDO-RS (the studies, series and instances the platform holds, by their de-identified UIDs) and
 * WADO-RS retrieve of those stored, de-identified files.
 * Every STOW-RS part goes through `ingestFile`, the same path as POST /ingest: header rules and
 * de-identification in the image worker pool, full decode and quality gates, content-addressed
 * storage. Response bodies follow PS3.18 §10.5 (Store), §10.6 (Search) and §10.4 (Retrieve).
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../../core/errors.js';
import type { AnonymisedDicom } from '../../core/imaging/image-pool.js';
import type { DataContext } from './context.js';
import { SERVICE_NAME } from './context.js';
import { ingestFile, type IngestResult } from './ingest.js';
import { getImageBytes } from './preprocessed.js';
import type { QidoPage } from '../store/dicom-store.js';

/** One body part of a multipart/related request. */
export interface RelatedPart {
  headers: Record<string, string>;
  body: Buffer;
}

const MAX_PARTS = 10_000;
const MAX_HEADER_BYTES = 16 * 1024;

/** The parameters of a Content-Type header (`boundary`, `type`), lower-case names, unquoted values. */
export function contentTypeParams(header: string): { mediaType: string; params: Record<string, string> } {
  const [media, ...rest] = header.split(';');
  const params: Record<string, string> = {};
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const name = p.slice(0, eq).trim().toLowerCase();
    let value = p.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    params[name] = value;
  }
  return { mediaType: (media ?? '').trim().toLowerCase(), params };
}

/**
 * Splits a multipart/related body (RFC 2387 / RFC 2046) into its parts.
 * @throws AppError BAD_REQUEST naming what is wrong (no boundary, no closing delimiter, a part
 *   without its header end, too many parts); never anything else.
 */
export function parseMultipartRelated(body: Buffer, contentType: string): RelatedPart[] {
  const { params } = contentTypeParams(contentType);
  const boundary = params.boundary;
  if (!boundary || boundary.length > 200) throw new AppError('BAD_REQUEST', 'multipart/related needs a boundary parameter (1-200 characters)');
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new AppError('BAD_REQUEST', 'the multipart body does not contain its boundary');
  const parts: RelatedPart[] = [];
  for (;;) {
    pos += delimiter.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // closing delimiter
    // Transport padding, then the line break ending the delimiter line.
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    else if (body[pos] === 0x0a) pos += 1;
    else throw new AppError('BAD_REQUEST', 'the multipart body is malformed after a boundary (no line break)');
    let headerEnd = body.indexOf('\r\n\r\n', pos, 'latin1');
    let sep = 4;
    const lfEnd = body.indexOf('\n\n', pos, 'latin1');
    if (lfEnd >= 0 && (headerEnd < 0 || lfEnd < headerEnd)) {
      headerEnd = lfEnd;
      sep = 2;
    }
    if (headerEnd < 0 || headerEnd - pos > MAX_HEADER_BYTES) throw new AppError('BAD_REQUEST', `multipart part ${parts.length + 1} has no end of headers`);
    const headers: Record<string, string> = {};
    for (const line of body.subarray(pos, headerEnd).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const start = headerEnd + sep;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n', 'latin1'), delimiter]), start);
    const nextLf = next >= 0 ? next : body.indexOf(Buffer.concat([Buffer.from('\n', 'latin1'), delimiter]), start);
    if (nextLf < 0) throw new AppError('BAD_REQUEST', `multipart part ${parts.length + 1} is not closed by the boundary (body truncated?)`);
    const end = next >= 0 ? next : nextLf;
    parts.push({ headers, body: body.subarray(start, end) });
    if (parts.length > MAX_PARTS) throw new AppError('BAD_REQUEST', `more than ${MAX_PARTS} parts in one request`);
    pos = end + (next >= 0 ? 2 : 1);
  }
}

/** PS3.18 Table 10.5.3-2 / PS3.4 Annex GG failure reasons. */
export const FAILURE_REASON = {
  processingFailure: 0x0110,
  sopClassNotSupported: 0x0122,
  outOfResources: 0xa700,
  dataSetDoesNotMatchSopClass: 0xa900,
  cannotUnderstand: 0xc000,
  transferSyntaxNotSupported: 0xc122,
} as const;

/** The failure reason of a refused instance, from the ingest error code. */
export function failureReason(code: string | undefined, message = ''): number {
  if (code === 'PAYLOAD_TOO_LARGE' || code === 'QUEUE_FULL' || code === 'SERVICE_UNAVAILABLE') return FAILURE_REASON.outOfResources;
  if (code === 'UNSUPPORTED_MEDIA_TYPE') {
    return /transfer syntax/i.test(message) ? FAILURE_REASON.transferSyntaxNotSupported : FAILURE_REASON.sopClassNotSupported;
  }
  if (code === 'UNPROCESSABLE' || code === 'INVALID_INPUT') return /SOP class|not an image/i.test(message) ? FAILURE_REASON.sopClassNotSupported : FAILURE_REASON.cannotUnderstand;
  return FAILURE_REASON.processingFailure;
}

type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

function ui(value: string | null | undefined): { vr: 'UI'; Value?: string[] } {
  return value ? { vr: 'UI', Value: [value] } : { vr: 'UI' };
}

/** What the network paths (STOW-RS, C-STORE) hand to auto-predict for an arrival. */
export interface Arrival {
  result: IngestResult;
  dicom: Pick<AnonymisedDicom, 'uids' | 'original'> | null;
}

export interface StowOutcome {
  /** 200 all stored, 202 some failed, 409 none stored. */
  status: 200 | 202 | 409;
  body: DicomJson;
  arrivals: Arrival[];
}

/**
 * Stores each part as POST /ingest would (label unlabelled), and answers per PS3.18: Referenced
 * SOP Sequence (0008,1199) for stored instances (new or already held), Failed SOP Sequence
 * (0008,1198) with Failure Reason (0008,1197) for refused ones. The UIDs reported are the ones the
 * sender sent (it knows no others); nothing identifying is kept.
 * @throws AppError BAD_REQUEST when there is no part.
 */
export async function stowInstances(
  ctx: DataContext,
  parts: RelatedPart[],
  opts: { actor: string; requestId: string; defaultType: string; keepOriginal: boolean },
): Promise<StowOutcome> {
  if (parts.length === 0) throw new AppError('BAD_REQUEST', 'the multipart/related body has no part');
  const referenced: DicomJson[] = [];
  const failed: DicomJson[] = [];
  const arrivals: Arrival[] = [];
  for (const [i, part] of parts.entries()) {
    const type = contentTypeParams(part.headers['content-type'] ?? opts.defaultType).mediaType;
    if (type !== 'application/dicom') {
      failed.push({ '00081150': ui(null), '00081155': ui(null), '00081197': { vr: 'US', Value: [FAILURE_REASON.sopClassNotSupported] } });
      ctx.platform.audit.record({
        actor: opts.actor,
        action: 'data.ingest',
        resource: `stow-part:${i + 1}`,
        outcome: 'failure',
        requestId: opts.requestId,
        service: SERVICE_NAME,
        details: { status: 'rejected', error: 'UNSUPPORTED_MEDIA_TYPE', channel: 'stow-rs' },
      });
      continue;
    }
    let dicom: Arrival['dicom'] = null;
    const result = await ingestFile(ctx, {
      bytes: part.body,
      fileName: `stow-${i + 1}.dcm`,
      label: 'unlabelled',
      actor: opts.actor,
      audit: { requestId: opts.requestId },
      keepOriginal: opts.keepOriginal,
      onDicom: (d) => {
        dicom = d;
      },
    });
    const sent = (dicom as Arrival['dicom'])?.original ?? null;
    const sopClass = sent?.sopClassUid ?? (dicom as Arrival['dicom'])?.uids.sopClassUid ?? null;
    const sopInstance = sent?.sopInstanceUid ?? null;
    if (result.status === 'rejected' || result.format !== 'dicom') {
      const reason = result.status === 'rejected' ? failureReason(result.error?.code, result.error?.message) : FAILURE_REASON.sopClassNotSupported;
      failed.push({ '00081150': ui(sopClass), '00081155': ui(sopInstance), '00081197': { vr: 'US', Value: [reason] } });
      continue;
    }
    referenced.push({ '00081150': ui(sopClass), '00081155': ui(sopInstance) });
    arrivals.push({ result, dicom });
  }
  const body: DicomJson = {};
  if (failed.length) body['00081198'] = { vr: 'SQ', Value: failed };
  if (referenced.length) body['00081199'] = { vr: 'SQ', Value: referenced };
  const status = referenced.length === 0 ? 409 : failed.length === 0 ? 200 : 202;
  ctx.platform.audit.record({
    actor: opts.actor,
    action: 'dicom.stow',
    resource: 'dicomweb:studies',
    outcome: referenced.length === 0 ? 'failure' : 'success',
    requestId: opts.requestId,
    service: SERVICE_NAME,
    details: { parts: parts.length, stored: referenced.length, failed: failed.length, status },
  });
  return { status, body, arrivals };
}

/** QIDO-RS paging from `limit` / `offset` (defaults 100 / 0; limit at most 1000). */
export function qidoPage(query: { limit?: number; offset?: number }): QidoPage {
  return { limit: Math.min(Math.max(query.limit ?? 100, 1), 1000), offset: Math.max(query.offset ?? 0, 0) };
}

function is(n: number): { vr: 'IS'; Value: number[] } {
  return { vr: 'IS', Value: [n] };
}

/** GET /dicomweb/studies: Study Instance UID, Modalities in Study, numbers of series and instances. */
export async function searchStudies(ctx: DataContext, filter: { studyUid?: string }, page: QidoPage): Promise<DicomJson[]> {
  const rows = await ctx.dicom.studies(filter, page);
  return rows.map((s) => ({
    '00080061': s.modalities.length ? { vr: 'CS', Value: s.modalities } : { vr: 'CS' },
    '0020000D': ui(s.studyUid),
    '00201206': is(s.series),
    '00201208': is(s.instances),
  }));
}

/** GET /dicomweb/studies/{study}/series. */
export async function searchSeries(ctx: DataContext, studyUid: string, filter: { seriesUid?: string; modality?: string }, page: QidoPage): Promise<DicomJson[]> {
  const rows = await ctx.dicom.series(studyUid, filter, page);
  return rows.map((s) => ({
    '00080060': s.modality ? { vr: 'CS', Value: [s.modality] } : { vr: 'CS' },
    '0020000D': ui(s.studyUid),
    '0020000E': ui(s.seriesUid),
    '00201209': is(s.instances),
  }));
}

/** GET /dicomweb/studies/{study}/series/{series}/instances. */
export async function searchInstances(ctx: DataContext, studyUid: string, seriesUid: string, filter: { sopInstanceUid?: string }, page: QidoPage): Promise<DicomJson[]> {
  const rows = await ctx.dicom.instances(studyUid, seriesUid, filter, page);
  return rows.map((r) => ({
    '00080016': ui(r.sopClassUid),
    '00080018': ui(r.sopInstanceUid),
    '0020000D': ui(r.studyUid),
    '0020000E': ui(r.seriesUid),
  }));
}

/** WADO-RS answers at most this many instances, and this many bytes, per request. */
export const WADO_MAX_INSTANCES = 1000;
export const WADO_MAX_BYTES = 512 * 1024 * 1024;

/**
 * WADO-RS retrieve (PS3.18 10.4): the stored, de-identified files of a study, a series or one
 * instance as `multipart/related; type="application/dicom"`, addressed by the de-identified UIDs
 * QIDO-RS lists.
 * @throws AppError NOT_FOUND when nothing matches; PAYLOAD_TOO_LARGE past the limits (retrieve
 *   per series or instance instead).
 */
export async function retrieveInstances(
  ctx: DataContext,
  filter: { studyUid: string; seriesUid?: string; sopInstanceUid?: string },
): Promise<{ body: Buffer; contentType: string; instances: number }> {
  const rows = await ctx.dicom.retrieve(filter, WADO_MAX_INSTANCES + 1);
  const what = filter.sopInstanceUid ? 'instance' : filter.seriesUid ? 'series' : 'study';
  if (rows.length === 0) throw new AppError('NOT_FOUND', `no such ${what} (WADO-RS takes the de-identified UIDs QIDO-RS lists)`);
  if (rows.length > WADO_MAX_INSTANCES) {
    throw new AppError('PAYLOAD_TOO_LARGE', `the ${what} has more than ${WADO_MAX_INSTANCES} instances: retrieve it series by series`);
  }
  const boundary = `xray-${randomUUID()}`;
  const chunks: Buffer[] = [];
  let total = 0;
  for (const row of rows) {
    const bytes = await getImageBytes(ctx, row.hash);
    total += bytes.length;
    if (total > WADO_MAX_BYTES) {
      throw new AppError('PAYLOAD_TOO_LARGE', `the ${what} is larger than ${WADO_MAX_BYTES / 1048576} MiB: retrieve it series by series or instance by instance`);
    }
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${bytes.length}\r\n\r\n`, 'latin1'), bytes, Buffer.from('\r\n', 'latin1'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`, instances: rows.length };
}
