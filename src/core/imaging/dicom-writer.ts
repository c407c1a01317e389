/**
 * Builds small, valid DICOM files (Computed Radiography storage) for tests, demos and fixtures.
 * Pixels are written uncompressed (Explicit or Implicit VR Little Endian) or RLE Lossless.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';
import { denaturalize, writeDicomDict } from './dcmjs-io.js';
import type { DcmjsDataset, DcmjsElement } from './dcmjs-io.js';

export const TS_EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const TS_IMPLICIT_LE = '1.2.840.10008.1.2';
export const TS_RLE = '1.2.840.10008.1.2.5';
export const CR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.1';
/** UID root for this project's generated objects (UUID-derived, PS3.5 B.2). */
const IMPLEMENTATION_CLASS_UID = '2.25.163387279374962347542713939145386540547';

export interface MakeDicomOptions {
  width: number;
  height: number;
  /** Row-major stored values; Int16Array implies Pixel Representation 1 (signed). */
  pixels: Uint8Array | Uint16Array | Int16Array;
  bitsAllocated: 8 | 16;
  /** Defaults to bitsAllocated. High Bit is bitsStored - 1. */
  bitsStored?: number;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  rescaleSlope?: number;
  rescaleIntercept?: number;
  windowCenter?: number;
  windowWidth?: number;
  patientName?: string;
  patientId?: string;
  modality?: string;
  /** Default true; false writes an image header with no Pixel Data element. */
  withPixelData?: boolean;
  /** Default 'explicit'. */
  transferSyntax?: 'explicit' | 'implicit' | 'rle';
  /** Extra attributes by keyword, e.g. `{ InstitutionName: 'General', StudyDate: '20240101' }`. */
  attributes?: Record<string, unknown>;
  /** Extra raw elements by 8-hex-digit tag, e.g. private tags `{ '00091010': { vr: 'LO', Value: ['x'] } }`. */
  elements?: Record<string, DcmjsElement>;
}

/** A UID under 2.25 derived from `seed`, so the same input always gets the same UIDs. */
function derivedUid(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex').slice(0, 30);
  return `2.25.${BigInt(`0x${hex}`).toString()}`;
}

/** Encodes one byte plane with PackBits as RLE Lossless expects (runs never cross rows). */
function packBits(plane: Uint8Array, rowLength: number): number[] {
  const out: number[] = [];
  for (let rowStart = 0; rowStart < plane.length; rowStart += rowLength) {
    const end = Math.min(plane.length, rowStart + rowLength);
    let i = rowStart;
    while (i < end) {
      let run = 1;
      while (i + run < end && run < 128 && plane[i + run] === plane[i]) run++;
      if (run >= 2) {
        out.push(257 - run, plane[i]!);
        i += run;
        continue;
      }
      const litStart = i;
      while (i < end && i - litStart < 128 && !(i + 1 < end && plane[i + 1] === plane[i])) i++;
      if (i === litStart) i++;
      out.push(i - litStart - 1);
      for (let k = litStart; k < i; k++) out.push(plane[k]!);
    }
  }
  if (out.length % 2 === 1) out.push(128); // no-op byte keeps segments even-length
  return out;
}

/** Encodes one grey frame (1 sample) as an RLE Lossless frame (PS3.5 Annex G). */
export function encodeRleFrame(bytes: Uint8Array, width: number, height: number, bitsAllocated: 8 | 16): Uint8Array {
  const n = width * height;
  const bytesPerSample = bitsAllocated / 8;
  const segments: number[][] = [];
  for (let b = bytesPerSample - 1; b >= 0; b--) {
    const plane = new Uint8Array(n);
    for (let i = 0; i < n; i++) plane[i] = bytes[i * bytesPerSample + b]!;
    segments.push(packBits(plane, width));
  }
  const total = 64 + segments.reduce((s, seg) => s + seg.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, segments.length, true);
  let offset = 64;
  segments.forEach((seg, i) => {
    view.setUint32(4 + 4 * i, offset, true);
    out.set(seg, offset);
    offset += seg.length;
  });
  return out;
}

/**
 * Writes a single-frame greyscale DICOM file.
 *
 * @throws AppError INVALID_INPUT when the pixel array does not match width × height or the bit depth.
 * @example
 * const dcm = makeDicom({ width: 64, height: 64, pixels: new Uint16Array(64 * 64), bitsAllocated: 16,
 *   bitsStored: 12, photometric: 'MONOCHROME2', rescaleSlope: 1, rescaleIntercept: -1024,
 *   windowCenter: 40, windowWidth: 400, patientName: 'DOE^JANE' });
 */
export function makeDicom(options: MakeDicomOptions): Buffer {
  const { width, height, pixels, bitsAllocated } = options;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 65535 || height > 65535) {
    throw new AppError('INVALID_INPUT', `Invalid DICOM size ${width}x${height}`);
  }
  if (pixels.length !== width * height) {
    throw new AppError('INVALID_INPUT', `Pixel count ${pixels.length} does not match ${width}x${height}`);
  }
  if ((bitsAllocated === 8) !== (pixels instanceof Uint8Array)) {
    throw new AppError('INVALID_INPUT', 'bitsAllocated 8 needs a Uint8Array; 16 needs a Uint16Array or Int16Array');
  }
  const bitsStored = options.bitsStored ?? bitsAllocated;
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > bitsAllocated) {
    throw new AppError('INVALID_INPUT', `bitsStored ${bitsStored} must be 1..${bitsAllocated}`);
  }
  const signed = pixels instanceof Int16Array;
  const bytes = new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  const contentHash = createHash('sha256').update(bytes).update(JSON.stringify([width, height, options.patientId ?? '', options.patientName ?? ''])).digest('hex');
  const studyUid = derivedUid(`${contentHash}/study`);
  const seriesUid = derivedUid(`${contentHash}/series`);
  const instanceUid = derivedUid(`${contentHash}/instance`);

  const natural: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: CR_IMAGE_STORAGE,
    SOPInstanceUID: instanceUid,
    StudyDate: '',
    StudyTime: '',
    AccessionNumber: '',
    Modality: options.modality ?? 'CR',
    ReferringPhysicianName: '',
    PatientName: options.patientName ?? '',
    PatientID: options.patientId ?? '',
    PatientBirthDate: '',
    PatientSex: '',
    BodyPartExamined: 'CHEST',
    ViewPosition: 'PA',
    StudyInstanceUID: studyUid,
    SeriesInstanceUID: seriesUid,
    StudyID: '',
    SeriesNumber: 1,
    InstanceNumber: 1,
    PatientOrientation: '',
    SamplesPerPixel: 1,
    PhotometricInterpretation: options.photometric,
    Rows: height,
    Columns: width,
    BitsAllocated: bitsAllocated,
    BitsStored: bitsStored,
    HighBit: bitsStored - 1,
    PixelRepresentation: signed ? 1 : 0,
    ...(options.rescaleSlope !== undefined || options.rescaleIntercept !== undefined
      ? { RescaleSlope: options.rescaleSlope ?? 1, RescaleIntercept: options.rescaleIntercept ?? 0, RescaleType: 'US' }
      : {}),
    ...(options.windowCenter !== undefined && options.windowWidth !== undefined
      ? { WindowCenter: options.windowCenter, WindowWidth: options.windowWidth }
      : {}),
    ...options.attributes,
  };
  const dict: DcmjsDataset = denaturalize(natural);
  for (const [tag, el] of Object.entries(options.elements ?? {})) dict[tag.toUpperCase()] = el;

  const syntax = options.transferSyntax === 'implicit' ? TS_IMPLICIT_LE : options.transferSyntax === 'rle' ? TS_RLE : TS_EXPLICIT_LE;
  if (options.withPixelData !== false) {
    const frame = syntax === TS_RLE ? encodeRleFrame(bytes, width, height, bitsAllocated) : bytes;
    const value = new Uint8Array(frame.length + (frame.length % 2));
    value.set(frame);
    dict['7FE00010'] = { vr: bitsAllocated === 16 ? 'OW' : 'OB', Value: [value.buffer] };
  }
  const meta: DcmjsDataset = {
    '00020001': { vr: 'OB', Value: [new Uint8Array([0, 1]).buffer] },
    '00020002': { vr: 'UI', Value: [CR_IMAGE_STORAGE] },
    '00020003': { vr: 'UI', Value: [instanceUid] },
    '00020010': { vr: 'UI', Value: [syntax] },
    '00020012': { vr: 'UI', Value: [IMPLEMENTATION_CLASS_UID] },
    '00020013': { vr: 'SH', Value: ['XRAY_MLOPS'] },
  };
  return writeDicomDict(meta, dict);
}
