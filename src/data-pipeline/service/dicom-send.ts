/**
 * Sends DICOM Part 10 objects the platform made (auto-predict results) to a destination:
 * STOW-RS (multipart/related POST) or C-STORE (dcmjs-dimse SCU).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import dimse from 'dcmjs-dimse';
import type { DicomDestination } from '../../core/config/dicom-network.js';
import { AppError } from '../../core/errors.js';

export interface SendResult {
  /** SOP Instance UIDs the destination confirmed. */
  stored: string[];
  /** Per refused object: its SOP Instance UID and why. */
  failed: { sopInstanceUid: string; reason: string }[];
}

export interface OutgoingObject {
  sopInstanceUid: string;
  bytes: Buffer;
}

/** STOW-RS: one multipart/related request with every object; PS3.18 status and Failed SOP Sequence read back. */
export async function stowSend(url: string, objects: OutgoingObject[], opts: { timeoutMs?: number; headers?: Record<string, string> } = {}): Promise<SendResult> {
  const boundary = `xray-${randomUUID()}`;
  const chunks: Buffer[] = [];
  for (const o of objects) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1'), o.bytes, Buffer.from('\r\n', 'latin1'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json', ...opts.headers },
      body: Buffer.concat(chunks),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
    });
  } catch (err) {
    throw new AppError('SERVICE_UNAVAILABLE', `STOW-RS destination ${url} is unreachable (${(err as { cause?: { code?: string } })?.cause?.code ?? (err as Error).message})`);
  }
  const text = await res.text();
  let body: Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    // not JSON: judged by the status alone
  }
  const uidOf = (item: Record<string, { Value?: unknown[] }>) => String(item['00081155']?.Value?.[0] ?? '');
  const failedItems = body['00081198']?.Value ?? [];
  const failed = failedItems.map((i) => ({ sopInstanceUid: uidOf(i), reason: `failure reason ${String(i['00081197']?.Value?.[0] ?? '?')}` }));
  if (!res.ok && res.status !== 202) {
    const known = new Set(failed.map((f) => f.sopInstanceUid));
    for (const o of objects) if (!known.has(o.sopInstanceUid)) failed.push({ sopInstanceUid: o.sopInstanceUid, reason: `HTTP ${res.status}` });
    return { stored: [], failed };
  }
  const refused = new Set(failed.map((f) => f.sopInstanceUid));
  return { stored: objects.map((o) => o.sopInstanceUid).filter((u) => !refused.has(u)), failed };
}

/** C-STORE SCU: one association, every object, each answered with its own status. */
export async function cStoreSend(
  dest: Extract<DicomDestination, { kind: 'c-store' }>,
  objects: OutgoingObject[],
  opts: { callingAeTitle: string; timeoutMs?: number },
): Promise<SendResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'xray-cstore-'));
  try {
    const { Client, Dataset } = dimse;
    const { CStoreRequest } = dimse.requests;
    const { Status } = dimse.constants;
    const result: SendResult = { stored: [], failed: [] };
    const client = new Client();
    for (const [i, o] of objects.entries()) {
      const file = path.join(dir, `${i}.dcm`);
      await writeFile(file, o.bytes);
      const dataset = Dataset.fromFile(file);
      if (!dataset) throw new AppError('INTERNAL', 'a result object could not be read back for C-STORE');
      const request = new CStoreRequest(dataset);
      request.on('response', (response) => {
        const status = response.getStatus();
        if (status === Status.Success || (status & 0xf000) === 0xb000) result.stored.push(o.sopInstanceUid);
        else result.failed.push({ sopInstanceUid: o.sopInstanceUid, reason: `C-STORE status 0x${status.toString(16).padStart(4, '0')}` });
      });
      client.addRequest(request);
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.abort();
        reject(new AppError('SERVICE_UNAVAILABLE', `C-STORE to ${dest.aeTitle}@${dest.host}:${dest.port} did not finish within ${opts.timeoutMs ?? 60_000} ms`));
      }, opts.timeoutMs ?? 60_000);
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(new AppError('SERVICE_UNAVAILABLE', `C-STORE to ${dest.aeTitle}@${dest.host}:${dest.port} failed: ${why}`));
      };
      client.on('networkError', (e: Error) => fail(e.message));
      client.on('associationRejected', () => fail('association rejected'));
      client.on('closed', () => {
        clearTimeout(timer);
        resolve();
      });
      client.send(dest.host, dest.port, opts.callingAeTitle, dest.aeTitle);
    });
    const answered = new Set([...result.stored, ...result.failed.map((f) => f.sopInstanceUid)]);
    for (const o of objects) if (!answered.has(o.sopInstanceUid)) result.failed.push({ sopInstanceUid: o.sopInstanceUid, reason: 'no C-STORE response' });
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
