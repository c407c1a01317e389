/**
 * Thin, typed access to dcmjs reading and writing. dcmjs logs malformed-but-readable values
 * (a 2-byte Age String, say) straight to the console; services log through pino, so those
 * messages are silenced for the duration of each synchronous call and the level restored after.
 */
import dcmjs from 'dcmjs';
import type { DcmjsDataset, DicomDict } from 'dcmjs';
import { AppError } from '../errors.js';

export type { DcmjsDataset, DcmjsElement } from 'dcmjs';

const { DicomDict: DicomDictClass, DicomMessage, DicomMetaDictionary } = dcmjs.data;
export { DicomMetaDictionary };

/** The attribute keywords dcmjs's anonymiser empties (its PS3.15 basic-profile list). */
export function dcmjsTagNamesToEmpty(): string[] {
  return dcmjs.anonymizer.getTagsNameToEmpty();
}

function quietly<T>(fn: () => T): T {
  const loggers = [dcmjs.log, dcmjs.log.getLogger('validation.dcmjs')];
  const levels = loggers.map((l) => l.getLevel());
  for (const l of loggers) l.setLevel('silent', false);
  try {
    return fn();
  } finally {
    loggers.forEach((l, i) => l.setLevel(levels[i] as number, false));
  }
}

/** Copies a Buffer/Uint8Array into a standalone ArrayBuffer (dcmjs wants one it may keep). */
export function toArrayBuffer(buf: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(buf.byteLength);
  new Uint8Array(out).set(buf);
  return out;
}

/**
 * Parses a Part 10 file into dcmjs's denaturalised form (`meta` = group 0002, `dict` = the rest).
 * @throws AppError UNPROCESSABLE when dcmjs cannot read it.
 */
export function readDicomDict(buf: Uint8Array): DicomDict {
  try {
    return quietly(() => DicomMessage.readFile(toArrayBuffer(buf)));
  } catch (err) {
    throw new AppError('UNPROCESSABLE', `Not a readable DICOM file: ${errorText(err)}`);
  }
}

/** Serialises a dataset as a Part 10 file (preamble, `DICM`, meta group, dataset). */
export function writeDicomDict(meta: DcmjsDataset, dict: DcmjsDataset): Buffer {
  const out = new DicomDictClass(meta);
  out.dict = dict;
  return Buffer.from(quietly(() => out.write()));
}

/** Denaturalises a keyword-keyed dataset (`{ PatientName: 'DOE^JANE' }`) to tag-keyed form. */
export function denaturalize(dataset: Record<string, unknown>): DcmjsDataset {
  return quietly(() => DicomMetaDictionary.denaturalizeDataset(dataset));
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
