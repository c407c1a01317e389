/** Fixtures and small helpers for the PACS connectivity tests (DICOMweb, DIMSE, Orthanc). Not a test file. */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { makeDicom } from '../../src/core/imaging/dicom-writer.js';
import { readDicomDict } from '../../src/core/imaging/dcmjs-io.js';
import { renderChestXray } from '../../src/core/imaging/synthetic.js';

/** The Debian package of each external tool these tests start (`node scripts/setup.mjs --test` installs them). */
export const PACKAGE_OF: Record<string, string> = {
  Orthanc: 'orthanc (+ orthanc-dicomweb)',
  storescu: 'dcmtk',
  echoscu: 'dcmtk',
  img2dcm: 'dcmtk',
  dciodvfy: 'dicom3tools',
};

export function haveTool(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** A loud skip message naming the missing tool and its package. */
export function missing(tools: string[]): string | false {
  const absent = tools.filter((t) => !haveTool(t));
  if (absent.length === 0) return false;
  const msg = `SKIPPING: ${absent.map((t) => `${t} (Debian ${PACKAGE_OF[t] ?? '?'})`).join(', ')} not installed; \`node scripts/setup.mjs --test\` installs them`;
  console.warn(msg);
  return msg;
}

/** A synthetic chest radiograph as a DICOM CR file with the given patient and study. */
export function chestDicom(seed: string, opts: { patientName?: string; patientId?: string; studyUid?: string; size?: number } = {}): Buffer {
  const img = renderChestXray({ seed, size: opts.size ?? 256 });
  return makeDicom({
    width: img.width,
    height: img.height,
    pixels: img.pixels,
    bitsAllocated: 8,
    photometric: 'MONOCHROME2',
    patientName: opts.patientName ?? 'TEST^PATIENT',
    patientId: opts.patientId ?? 'MRN-0001',
    attributes: {
      ...(opts.studyUid ? { StudyInstanceUID: opts.studyUid } : {}),
      StudyDate: '20240102',
      AccessionNumber: 'ACC-4242',
    },
  });
}

/** The named attributes of a Part 10 file (tests only: trusted bytes). */
export function uidsOf(file: Uint8Array): { study: string; series: string; sop: string; sopClass: string; patientName: string; patientId: string } {
  const { dict } = readDicomDict(file);
  const s = (tag: string) => {
    const v = dict[tag]?.Value?.[0];
    if (v && typeof v === 'object' && 'Alphabetic' in v) return String((v as { Alphabetic: unknown }).Alphabetic);
    return v === undefined ? '' : String(v);
  };
  return { study: s('0020000D'), series: s('0020000E'), sop: s('00080018'), sopClass: s('00080016'), patientName: s('00100010'), patientId: s('00100020') };
}

/** A multipart/related body of DICOM parts, as a STOW-RS client sends it. */
export function related(parts: (Uint8Array | { type: string; bytes: Uint8Array })[], opts: { boundary?: string } = {}): { payload: Buffer; headers: Record<string, string> } {
  const boundary = opts.boundary ?? `b-${randomUUID()}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const { type, bytes } = p instanceof Uint8Array ? { type: 'application/dicom', bytes: p } : p;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${type}\r\n\r\n`), Buffer.from(bytes), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/related; type="application/dicom"; boundary="${boundary}"` } };
}

/** A TCP port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `fn` until it returns a truthy value, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
