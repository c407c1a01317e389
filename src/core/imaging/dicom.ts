/**
 * DICOM → 8-bit greyscale, the way a viewer would display it.
 *
 * Pipeline (PS3.3 C.11 / PS3.4 N.2): stored values → Modality LUT (Rescale Slope/Intercept) →
 * VOI LUT (window centre/width, else a VOI LUT Sequence, else min–max of the data) →
 * Presentation (MONOCHROME1 is inverted so that the output always reads "bright = dense").
 * The three steps are folded into one lookup table over the stored values, so a 16-bit image
 * costs one pass over its pixels.
 *
 * Supported pixel encodings: native (Implicit/Explicit VR Little Endian, Deflated, Explicit Big
 * Endian; 8/16 bits allocated, signed or unsigned), RLE Lossless, 8-bit JPEG Baseline /
 * Extended (decoded with sharp), and through `./codecs/` 12-bit JPEG Extended (.51), JPEG Lossless
 * (.57, .70), JPEG-LS (.80, .81), JPEG 2000 (.90, .91) and HTJ2K (.201, .202, .203). Anything else
 * (JPIP, MPEG/H.264/HEVC video, …) is refused with UNSUPPORTED_MEDIA_TYPE naming the transfer
 * syntax. Multi-frame objects decode their first frame.
 */
import { inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import sharp from 'sharp';
import type { OutputInfo } from 'sharp';
import { AppError } from '../errors.js';
import { CODEC_NAMES, decodeCodestream, sizeAtLevel } from './codecs/index.js';
import type { CompressedCodec, DecodedCodestream } from './codecs/index.js';

/** DICOM transfer syntax UIDs this module knows by name. */
export const TRANSFER_SYNTAXES: Readonly<Record<string, string>> = Object.freeze({
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline (Process 1)',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (Process 2 & 4)',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless (Process 14)',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1 (Process 14, Selection Value 1)',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.4.94': 'JPIP Referenced',
  '1.2.840.10008.1.2.4.100': 'MPEG2 Main Profile / Main Level',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 AVC/H.264 High Profile',
  '1.2.840.10008.1.2.4.201': 'HTJ2K Lossless',
  '1.2.840.10008.1.2.4.202': 'HTJ2K Lossless RPCL',
  '1.2.840.10008.1.2.4.203': 'HTJ2K',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
});

type PixelCodec = 'native-le' | 'native-be' | 'jpeg' | 'rle' | CompressedCodec;

const CODECS: Readonly<Record<string, PixelCodec>> = {
  '1.2.840.10008.1.2': 'native-le',
  '1.2.840.10008.1.2.1': 'native-le',
  '1.2.840.10008.1.2.1.99': 'native-le',
  '1.2.840.10008.1.2.2': 'native-be',
  '1.2.840.10008.1.2.4.50': 'jpeg',
  '1.2.840.10008.1.2.4.51': 'jpeg',
  '1.2.840.10008.1.2.4.57': 'jpeg-lossless',
  '1.2.840.10008.1.2.4.70': 'jpeg-lossless',
  '1.2.840.10008.1.2.4.80': 'jpeg-ls',
  '1.2.840.10008.1.2.4.81': 'jpeg-ls',
  '1.2.840.10008.1.2.4.90': 'j2k',
  '1.2.840.10008.1.2.4.91': 'j2k',
  '1.2.840.10008.1.2.4.201': 'htj2k',
  '1.2.840.10008.1.2.4.202': 'htj2k',
  '1.2.840.10008.1.2.4.203': 'htj2k',
  '1.2.840.10008.1.2.5': 'rle',
};

/** Syntaxes whose decoded values may differ from the encoder's input (lossy or near-lossless). */
const LOSSY_SYNTAXES = new Set([
  '1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.4.203',
]);

function isCompressedCodec(codec: PixelCodec): codec is CompressedCodec {
  return codec in CODEC_NAMES;
}

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

/** VOI function named by (0028,1056); LINEAR when absent. */
export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

/** Which VOI transform produced the output grey levels. */
export type VoiSource = 'window' | 'lut' | 'minmax' | 'none';

/** Non-identifying attributes of a decoded DICOM image, for logging, metadata and QA. */
export interface DicomImageMeta {
  transferSyntaxName: string;
  sopClassUid: string | null;
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: 0 | 1;
  samplesPerPixel: number;
  numberOfFrames: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  /** The window that was applied (first of several), or null. */
  window: { center: number; width: number; fn: VoiFunction } | null;
  voiSource: VoiSource;
  /** True when the output was inverted because the image is MONOCHROME1. */
  inverted: boolean;
  /** Min and max stored values of the decoded frame. */
  storedRange: [number, number];
  /** For colour images: whether the content is grey anyway. Always true for MONOCHROME*. */
  isGreyscaleContent: boolean;
  viewPosition: string | null;
  bodyPartExamined: string | null;
  /** Row and column spacing in mm, from Pixel Spacing or Imager Pixel Spacing. */
  pixelSpacing: [number, number] | null;
  /** (0028,0301) Burned In Annotation; 'YES' means text may be drawn into the pixels. */
  burnedInAnnotation: string | null;
}

/** One displayed frame as 8-bit greyscale, row-major, `width * height` bytes. */
export interface DicomImage {
  /** Size of `pixels`: the image's Columns × Rows, or less at a reduced `level`. */
  width: number;
  height: number;
  /** Resolution level decoded (see `DecodeDicomOptions.targetSide`): 0 = full size. */
  level: number;
  pixels: Uint8Array;
  bitsStored: number;
  photometric: string;
  transferSyntax: string;
  modality: string | null;
  meta: DicomImageMeta;
}

export interface DecodeDicomOptions {
  /** Refuse images with more pixels than this (PAYLOAD_TOO_LARGE). Default 50 million. */
  maxPixels?: number;
  /** 'auto' (default) uses the file's window or VOI LUT; 'minmax' always stretches min–max. */
  voi?: 'auto' | 'minmax';
  /** Strictness of the JPEG decoder for compressed frames; see `DecodeOptions.failOn`. Default 'warning'. */
  failOn?: 'warning' | 'error';
  /**
   * The side the caller will shrink the picture to. A JPEG 2000 / HTJ2K frame is then decoded at
   * the smallest resolution level whose shorter side is still at least {@link REDUCED_DECODE_MARGIN}
   * times this (the wavelet's low-pass band: 4–20× less work at 2048² for a 224² input); other
   * syntaxes, and images too small to gain, decode at full size. Leave unset wherever exact
   * pixels matter (ingest's validation, stored values, display).
   */
  targetSide?: number;
}

/**
 * A reduced decode keeps at least this many source pixels per output pixel on the shorter side,
 * so the final resize still averages (the lanczos3 shrink sees a 2× or larger reduction).
 */
export const REDUCED_DECODE_MARGIN = 2;

export const DEFAULT_DICOM_MAX_PIXELS = 50_000_000;

/** Basic facts from the header, without decoding pixels. */
export interface DicomHeader {
  dataSet: DataSet;
  transferSyntax: string;
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: 0 | 1;
  samplesPerPixel: number;
  photometric: string;
  numberOfFrames: number;
  planarConfiguration: number;
  modality: string | null;
}

const VR_CODES = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FL', 'FD', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL',
  'OV', 'OW', 'PN', 'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US',
  'UT', 'UV',
]);

/**
 * Whether `buf` looks like DICOM: Part 10 (`DICM` at offset 128) or a raw dataset with no
 * preamble that starts with a group 0002 or 0008 element.
 */
export function isDicom(buf: Uint8Array): boolean {
  return dicomLayout(buf) !== null;
}

type DicomLayout = 'part10' | 'raw-meta' | 'raw-explicit' | 'raw-implicit';

function dicomLayout(buf: Uint8Array): DicomLayout | null {
  if (buf.length >= 132 && buf[128] === 0x44 && buf[129] === 0x49 && buf[130] === 0x43 && buf[131] === 0x4d) {
    return 'part10';
  }
  if (buf.length < 12) return null;
  const group = buf[0]! | (buf[1]! << 8);
  const element = buf[2]! | (buf[3]! << 8);
  const vr = String.fromCharCode(buf[4]!, buf[5]!);
  const explicit = VR_CODES.has(vr);
  if (group === 0x0002 && explicit && element <= 0x0102) return 'raw-meta';
  if (group !== 0x0008 || element > 0x0fff) return null;
  if (explicit) return 'raw-explicit';
  const length = (buf[4]! | (buf[5]! << 8) | (buf[6]! << 16)) + buf[7]! * 0x1000000;
  return length % 2 === 0 && length <= 1024 && 8 + length <= buf.length ? 'raw-implicit' : null;
}

function parseDataSet(buf: Uint8Array): DataSet {
  const layout = dicomLayout(buf);
  if (layout === null) {
    throw new AppError('UNPROCESSABLE', 'Not a DICOM file (no DICM prefix and no recognisable dataset start)');
  }
  let bytes = buf instanceof Buffer ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : buf;
  const options: { TransferSyntaxUID?: string } = {};
  if (layout === 'raw-meta') {
    // A meta group without preamble: give it one so the meta's transfer syntax is honoured.
    const withPreamble = new Uint8Array(132 + bytes.length);
    withPreamble.set([0x44, 0x49, 0x43, 0x4d], 128);
    withPreamble.set(bytes, 132);
    bytes = withPreamble;
  } else if (layout === 'raw-explicit') {
    options.TransferSyntaxUID = EXPLICIT_LE;
  } else if (layout === 'raw-implicit') {
    options.TransferSyntaxUID = IMPLICIT_LE;
  }
  let dataSet: DataSet;
  try {
    dataSet = dicomParser.parseDicom(bytes, { ...options, inflater: inflateDataSet });
  } catch (err) {
    throw new AppError('UNPROCESSABLE', `DICOM could not be parsed: ${parserErrorText(err)}`);
  }
  checkDataSetLimits(dataSet);
  return dataSet;
}

/** A deflated data set may inflate to at most this many bytes (a deflate bomb is refused, not inflated). */
export const MAX_INFLATED_BYTES = 256 * 1024 * 1024;

/**
 * Deflated Explicit VR Little Endian: the meta header as it is, then the raw-deflated data set
 * inflated with a size cap. (dicom-parser's own Node path needs a Buffer and has no cap.)
 */
function inflateDataSet(byteArray: Uint8Array, position: number): Uint8Array {
  let inflated: Buffer;
  try {
    inflated = inflateRawSync(byteArray.subarray(position), { maxOutputLength: MAX_INFLATED_BYTES });
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError
      ? `the deflated data set inflates past ${MAX_INFLATED_BYTES / 1024 / 1024} MiB`
      : `the deflated data set does not inflate (${(err as Error).message})`;
  }
  const full = new Uint8Array(position + inflated.length);
  full.set(byteArray.subarray(0, position), 0);
  full.set(inflated, position);
  return full;
}

/** dicom-parser throws strings, Errors, or `{ exception, dataSet }` objects for data set errors. */
function parserErrorText(err: unknown): string {
  const raw = typeof err === 'string' ? err
    : err instanceof Error ? err.message
    : err && typeof err === 'object' && 'exception' in err ? String((err as { exception: unknown }).exception)
    : String(err);
  if (/call stack/i.test(raw)) return `sequences are nested too deeply (more than the parser's stack allows; the limit is ${MAX_SEQUENCE_DEPTH} levels)`;
  const text = raw.replace(/^dicomParser\.\w+: /, '');
  if (/buffer overread|attempt to read past end|overrun|past the end/i.test(text)) return `the file is truncated or an element's length runs past its end (${text})`;
  return text;
}

/** Deepest sequence nesting accepted; radiography objects use 3 or 4. */
export const MAX_SEQUENCE_DEPTH = 32;
/** Most elements (all nesting levels together) accepted in one data set. */
export const MAX_DATASET_ELEMENTS = 100_000;

/** Walks the parsed tree iteratively: refuses absurd nesting or element counts. */
function checkDataSetLimits(root: DataSet): void {
  const stack: { ds: DataSet; depth: number }[] = [{ ds: root, depth: 0 }];
  let elements = 0;
  while (stack.length > 0) {
    const { ds, depth } = stack.pop()!;
    if (depth > MAX_SEQUENCE_DEPTH) {
      throw new AppError('UNPROCESSABLE', `DICOM sequences are nested more than ${MAX_SEQUENCE_DEPTH} levels deep`);
    }
    for (const el of Object.values(ds.elements)) {
      if (++elements > MAX_DATASET_ELEMENTS) {
        throw new AppError('UNPROCESSABLE', `DICOM data set has more than ${MAX_DATASET_ELEMENTS} elements`);
      }
      for (const item of el.items ?? []) if (item.dataSet) stack.push({ ds: item.dataSet, depth: depth + 1 });
    }
  }
}

function str(ds: DataSet, tag: string): string | null {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return null;
  const v = ds.string(tag);
  return v === undefined || v === '' ? null : v;
}

function num(ds: DataSet, tag: string, index = 0): number | null {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return null;
  const v = ds.floatString(tag, index);
  return v === undefined || !Number.isFinite(v) ? null : v;
}

function us(ds: DataSet, tag: string): number | null {
  const el = ds.elements[tag];
  if (!el || el.length < 2) return null;
  return ds.uint16(tag) ?? null;
}

/**
 * Reads the header of a DICOM buffer (no pixel decoding).
 * @throws AppError UNPROCESSABLE for garbage, missing image attributes or missing pixel data;
 *   UNSUPPORTED_MEDIA_TYPE for float pixel data.
 */
export function readDicomHeader(buf: Uint8Array): DicomHeader {
  if (buf.length === 0) throw new AppError('INVALID_INPUT', 'Empty DICOM buffer');
  const dataSet = parseDataSet(buf);
  checkImageSopClass(dataSet);
  const transferSyntax = str(dataSet, 'x00020010') ?? IMPLICIT_LE;
  const rows = us(dataSet, 'x00280010');
  const columns = us(dataSet, 'x00280011');
  if (!dataSet.elements.x7fe00010) {
    if (dataSet.elements.x7fe00008 || dataSet.elements.x7fe00009) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'DICOM float/double pixel data is not supported');
    }
    throw new AppError('UNPROCESSABLE', 'DICOM has no Pixel Data (7FE0,0010): not an image');
  }
  if (!rows || !columns) throw new AppError('UNPROCESSABLE', 'DICOM image lacks Rows/Columns');
  const bitsAllocated = us(dataSet, 'x00280100') ?? 8;
  const bitsStored = us(dataSet, 'x00280101') ?? bitsAllocated;
  const samplesPerPixel = us(dataSet, 'x00280002') ?? 1;
  if (bitsStored < 1 || bitsStored > bitsAllocated) {
    throw new AppError('UNPROCESSABLE', `DICOM Bits Stored ${bitsStored} is outside 1..Bits Allocated (${bitsAllocated})`);
  }
  if (samplesPerPixel < 1 || samplesPerPixel > 4) throw new AppError('UNPROCESSABLE', `DICOM Samples per Pixel ${samplesPerPixel} is invalid`);
  const numberOfFrames = Math.max(1, Math.trunc(num(dataSet, 'x00280008') ?? 1));
  checkNativePixelLength(dataSet.elements.x7fe00010, rows * columns * samplesPerPixel * Math.ceil(bitsAllocated / 8), numberOfFrames);
  return {
    dataSet,
    transferSyntax,
    rows,
    columns,
    bitsAllocated,
    bitsStored,
    highBit: us(dataSet, 'x00280102') ?? bitsStored - 1,
    pixelRepresentation: us(dataSet, 'x00280103') === 1 ? 1 : 0,
    samplesPerPixel,
    photometric: (str(dataSet, 'x00280004') ?? (samplesPerPixel === 1 ? 'MONOCHROME2' : 'RGB')).toUpperCase(),
    numberOfFrames,
    planarConfiguration: us(dataSet, 'x00280006') ?? 0,
    modality: str(dataSet, 'x00080060'),
  };
}

/**
 * SOP class families that carry no displayable image (PS3.4 Annex B): reports, presentation
 * states, key-object selections, encapsulated documents, waveforms, RT plans/structures, raw data.
 */
const NON_IMAGE_SOP_CLASSES: readonly [prefix: string, name: string][] = [
  ['1.2.840.10008.5.1.4.1.1.88.', 'Structured Report'],
  ['1.2.840.10008.5.1.4.1.1.11.', 'Presentation State'],
  ['1.2.840.10008.5.1.4.1.1.104.', 'Encapsulated Document'],
  ['1.2.840.10008.5.1.4.1.1.9.', 'Waveform'],
  ['1.2.840.10008.5.1.4.1.1.481.', 'Radiotherapy object'],
  ['1.2.840.10008.5.1.4.1.1.66', 'Raw Data / Spatial Registration / Segmentation'],
  ['1.2.840.10008.5.1.4.1.1.67', 'Real World Value Mapping'],
];

function checkImageSopClass(ds: DataSet): void {
  // The data set's SOP Class UID and the meta header's Media Storage SOP Class UID: either will do.
  for (const uid of [str(ds, 'x00080016'), str(ds, 'x00020002')]) {
    if (!uid) continue;
    const family = NON_IMAGE_SOP_CLASSES.find(([prefix]) => uid.startsWith(prefix) || uid === prefix.replace(/\.$/, ''));
    if (family) throw new AppError('UNPROCESSABLE', `DICOM SOP class ${uid} (${family[1]}) is not an image`);
  }
}

/** Native (not encapsulated) Pixel Data must hold every frame the header announces. */
function checkNativePixelLength(el: Element | undefined, frameBytes: number, frames: number): void {
  if (!el || el.encapsulatedPixelData) return;
  const need = frameBytes * frames;
  if (el.length < need) {
    throw new AppError('UNPROCESSABLE', `DICOM pixel data is truncated: ${el.length} bytes, ${need} needed for ${frames} frame(s) of ${frameBytes} bytes`);
  }
}

/**
 * The modality LUT's Rescale Slope and Intercept (defaults 1 and 0 when absent).
 * @throws AppError UNPROCESSABLE for a present but non-numeric, non-finite or zero value.
 */
export function modalityRescale(ds: DataSet): { slope: number; intercept: number } {
  const read = (tag: string, name: string, fallback: number): number => {
    const el = ds.elements[tag];
    if (!el || el.length === 0) return fallback;
    const text = (ds.string(tag) ?? '').split('\\')[0]!.trim();
    if (text === '') return fallback;
    const v = Number(text);
    if (!Number.isFinite(v)) throw new AppError('UNPROCESSABLE', `DICOM ${name} "${text.slice(0, 32)}" is not a finite number`);
    return v;
  };
  const slope = read('x00281053', 'Rescale Slope', 1);
  if (slope === 0) throw new AppError('UNPROCESSABLE', 'DICOM Rescale Slope is 0: every pixel would map to the same value');
  return { slope, intercept: read('x00281052', 'Rescale Intercept', 0) };
}

function syntaxLabel(uid: string): string {
  const name = TRANSFER_SYNTAXES[uid];
  return name ? `${name} (${uid})` : uid;
}

function checkSupported(h: DicomHeader): PixelCodec {
  const codec = CODECS[h.transferSyntax];
  if (!codec) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `DICOM transfer syntax ${syntaxLabel(h.transferSyntax)} is not supported`);
  }
  if (h.bitsAllocated !== 8 && h.bitsAllocated !== 16) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `DICOM Bits Allocated ${h.bitsAllocated} is not supported (8 or 16)`);
  }
  if (h.bitsStored < 1 || h.bitsStored > h.bitsAllocated || h.highBit >= h.bitsAllocated || h.highBit + 1 < h.bitsStored) {
    throw new AppError('UNPROCESSABLE', `DICOM bit layout is inconsistent (allocated ${h.bitsAllocated}, stored ${h.bitsStored}, high bit ${h.highBit})`);
  }
  const mono = h.photometric === 'MONOCHROME1' || h.photometric === 'MONOCHROME2';
  if (mono && h.samplesPerPixel !== 1) {
    throw new AppError('UNPROCESSABLE', `${h.photometric} with Samples per Pixel ${h.samplesPerPixel}`);
  }
  if (!mono) {
    // JPEG 2000's reversible/irreversible colour transforms are undone by the decoder (→ RGB).
    const colourOk = h.samplesPerPixel === 3 && h.bitsAllocated === 8 &&
      (h.photometric === 'RGB' || h.photometric === 'YBR_FULL' ||
        (codec === 'jpeg' && h.photometric.startsWith('YBR')) ||
        ((codec === 'j2k' || codec === 'htj2k') && (h.photometric === 'YBR_RCT' || h.photometric === 'YBR_ICT')));
    if (!colourOk) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', `DICOM photometric interpretation ${h.photometric} (${h.samplesPerPixel} samples, ${h.bitsAllocated} bits) is not supported`);
    }
  }
  if (codec === 'jpeg' && h.bitsStored > 8) {
    // 12-bit JPEG Extended (process 4): sharp's libjpeg-turbo is 8-bit only; the IJG 12-bit build decodes it.
    if (h.bitsStored > 12) throw new AppError('UNPROCESSABLE', `DICOM ${syntaxLabel(h.transferSyntax)} holds at most 12-bit samples, but Bits Stored is ${h.bitsStored}`);
    return 'jpeg-12bit';
  }
  return codec;
}

/** Stored values of one frame, as read from the file (before the modality LUT). */
interface StoredFrame {
  /** Grey: stored values (signed where Pixel Representation is 1). Colour: luminance 0..255. */
  values: Uint8Array | Int8Array | Uint16Array | Int16Array;
  colour: boolean;
  isGreyscaleContent: boolean;
  /** [min, max] of `values`, when the decode step already measured it. */
  range?: [number, number];
}

/** A stored frame with its size: Columns × Rows, or less when decoded at a reduced `level`. */
interface SizedFrame extends StoredFrame {
  width: number;
  height: number;
  level: number;
}

function frameBytes(h: DicomHeader): number {
  return h.rows * h.columns * h.samplesPerPixel * (h.bitsAllocated / 8);
}

function pixelElement(h: DicomHeader): Element {
  return h.dataSet.elements.x7fe00010 as Element;
}

function nativeFrame(h: DicomHeader, bigEndian: boolean): Uint8Array {
  const el = pixelElement(h);
  const need = frameBytes(h);
  if (el.encapsulatedPixelData) {
    throw new AppError('UNPROCESSABLE', 'DICOM pixel data is encapsulated but the transfer syntax is native');
  }
  const available = Math.min(el.length, h.dataSet.byteArray.length - el.dataOffset);
  if (available < need) {
    throw new AppError('UNPROCESSABLE', `DICOM pixel data is truncated: ${available} bytes, ${need} needed`);
  }
  // Copy so the result is aligned and independent of the input buffer.
  const out = new Uint8Array(need);
  out.set(h.dataSet.byteArray.subarray(el.dataOffset, el.dataOffset + need));
  if (bigEndian && h.bitsAllocated === 16) {
    for (let i = 0; i < need; i += 2) {
      const t = out[i]!;
      out[i] = out[i + 1]!;
      out[i + 1] = t;
    }
  }
  return out;
}

function encapsulatedFrame(h: DicomHeader): Uint8Array {
  const el = pixelElement(h);
  if (!el.encapsulatedPixelData || !el.fragments || el.fragments.length === 0) {
    throw new AppError('UNPROCESSABLE', 'DICOM compressed pixel data has no fragments');
  }
  try {
    if (h.numberOfFrames === 1) {
      return dicomParser.readEncapsulatedPixelDataFromFragments(h.dataSet, el, 0, el.fragments.length);
    }
    if (el.basicOffsetTable && el.basicOffsetTable.length > 0) {
      return dicomParser.readEncapsulatedImageFrame(h.dataSet, el, 0);
    }
    if (el.fragments.length === h.numberOfFrames) {
      return dicomParser.readEncapsulatedPixelDataFromFragments(h.dataSet, el, 0, 1);
    }
    const table = dicomParser.createJPEGBasicOffsetTable(h.dataSet, el);
    return dicomParser.readEncapsulatedImageFrame(h.dataSet, el, 0, table);
  } catch (err) {
    const message = typeof err === 'string' ? err : err instanceof Error ? err.message : String(err);
    throw new AppError('UNPROCESSABLE', `DICOM encapsulated pixel data is corrupt: ${message}`);
  }
}

/** Decodes one RLE Lossless frame (PS3.5 Annex G) into native little-endian layout. */
export function decodeRleFrame(data: Uint8Array, rows: number, columns: number, samplesPerPixel: number, bitsAllocated: number): Uint8Array {
  const bytesPerSample = bitsAllocated / 8;
  const pixels = rows * columns;
  const expectedSegments = samplesPerPixel * bytesPerSample;
  if (data.length < 64) throw new AppError('UNPROCESSABLE', 'RLE frame is shorter than its 64-byte header');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== expectedSegments) {
    throw new AppError('UNPROCESSABLE', `RLE frame has ${segments} segments, ${expectedSegments} expected`);
  }
  const out = new Uint8Array(pixels * expectedSegments);
  for (let s = 0; s < segments; s++) {
    const start = view.getUint32(4 + 4 * s, true);
    const end = s + 1 < segments ? view.getUint32(8 + 4 * s, true) : data.length;
    if (start < 64 || end > data.length || end < start) throw new AppError('UNPROCESSABLE', 'RLE segment offsets are corrupt');
    // Segment s holds byte (bytesPerSample - 1 - s % bytesPerSample) of sample floor(s / bytesPerSample):
    // most significant byte first. Native layout interleaves samples, little-endian within a sample.
    const sample = Math.floor(s / bytesPerSample);
    const byteInSample = bytesPerSample - 1 - (s % bytesPerSample);
    const stride = expectedSegments;
    let o = sample * bytesPerSample + byteInSample;
    let written = 0;
    let p = start;
    while (p < end && written < pixels) {
      const n = data[p++]!;
      if (n < 128) {
        const count = n + 1;
        if (p + count > end) throw new AppError('UNPROCESSABLE', 'RLE literal run overruns its segment');
        for (let k = 0; k < count && written < pixels; k++, written++, o += stride) out[o] = data[p + k]!;
        p += count;
      } else if (n > 128) {
        const count = 257 - n;
        const value = data[p++]!;
        for (let k = 0; k < count && written < pixels; k++, written++, o += stride) out[o] = value;
      }
    }
    if (written < pixels) throw new AppError('UNPROCESSABLE', `RLE segment ${s} decodes to ${written} of ${pixels} bytes`);
  }
  return out;
}

function typedStored(h: DicomHeader, bytes: Uint8Array): Uint8Array | Int8Array | Uint16Array | Int16Array {
  const n = h.rows * h.columns;
  const shift = h.highBit + 1 - h.bitsStored;
  const full = h.bitsStored === h.bitsAllocated && shift === 0;
  if (h.bitsAllocated === 8) {
    if (full) return h.pixelRepresentation ? new Int8Array(bytes.buffer, bytes.byteOffset, n) : bytes.subarray(0, n);
    const out = h.pixelRepresentation ? new Int8Array(n) : new Uint8Array(n);
    maskInto(bytes, out, h, shift);
    return out;
  }
  const words = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  if (full) return h.pixelRepresentation ? new Int16Array(words.buffer, words.byteOffset, n) : words;
  const out = h.pixelRepresentation ? new Int16Array(n) : new Uint16Array(n);
  maskInto(words, out, h, shift);
  return out;
}

function maskInto(src: Uint8Array | Uint16Array, out: Uint8Array | Int8Array | Uint16Array | Int16Array, h: DicomHeader, shift: number): void {
  const mask = (1 << h.bitsStored) - 1;
  const signBit = 1 << (h.bitsStored - 1);
  const wrap = 1 << h.bitsStored;
  for (let i = 0; i < out.length; i++) {
    const v = (src[i]! >> shift) & mask;
    out[i] = h.pixelRepresentation && v & signBit ? v - wrap : v;
  }
}

/** Luminance (Rec. 601) of 8-bit colour samples, plus whether the content is grey anyway. */
function colourToGrey(bytes: Uint8Array, n: number, planar: boolean, ybr: boolean): { grey: Uint8Array; isGreyscaleContent: boolean } {
  const grey = new Uint8Array(n);
  let colourful = 0;
  for (let i = 0; i < n; i++) {
    const a = planar ? bytes[i]! : bytes[3 * i]!;
    const b = planar ? bytes[n + i]! : bytes[3 * i + 1]!;
    const c = planar ? bytes[2 * n + i]! : bytes[3 * i + 2]!;
    if (ybr) {
      grey[i] = a;
      if (Math.abs(b - 128) > 8 || Math.abs(c - 128) > 8) colourful++;
    } else {
      grey[i] = Math.round(0.299 * a + 0.587 * b + 0.114 * c);
      if (Math.max(Math.abs(a - b), Math.abs(b - c), Math.abs(a - c)) > 16) colourful++;
    }
  }
  return { grey, isGreyscaleContent: colourful <= n * 0.005 };
}

async function decodeJpegFrame(h: DicomHeader, data: Uint8Array, failOn: 'warning' | 'error'): Promise<StoredFrame> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(data, { failOn }).raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new AppError('UNPROCESSABLE', `DICOM JPEG pixel data could not be decoded: ${err instanceof Error ? err.message : String(err)}`);
  }
  const { info } = decoded;
  if (info.width !== h.columns || info.height !== h.rows) {
    throw new AppError('UNPROCESSABLE', `DICOM JPEG frame is ${info.width}x${info.height} but the header says ${h.columns}x${h.rows}`);
  }
  const n = h.rows * h.columns;
  const bytes = new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength);
  if (info.channels === 1) {
    return { values: bytes, colour: h.samplesPerPixel === 3, isGreyscaleContent: true };
  }
  if (info.channels >= 3) {
    const rgb = info.channels === 3 ? bytes : dropExtraChannels(bytes, n, info.channels);
    const { grey, isGreyscaleContent } = colourToGrey(rgb, n, false, false);
    // A greyscale picture saved as a colour JPEG: treat as monochrome if the header says so.
    return { values: grey, colour: h.samplesPerPixel === 3, isGreyscaleContent };
  }
  throw new AppError('UNPROCESSABLE', `DICOM JPEG frame has ${info.channels} channels`);
}

function dropExtraChannels(bytes: Uint8Array, n: number, channels: number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    out[3 * i] = bytes[channels * i]!;
    out[3 * i + 1] = bytes[channels * i + 1]!;
    out[3 * i + 2] = bytes[channels * i + 2]!;
  }
  return out;
}

/**
 * A decoded codestream → the stored-value frame the native path produces for the same pixels.
 * The decoder's frame must match the header (size, samples per pixel, a precision that fits Bits
 * Allocated), else UNPROCESSABLE. Values are right-aligned in the codestream, so High Bit plays
 * no part; Bits Stored and Pixel Representation are applied as `typedStored` does for native data
 * (keep the low Bits Stored bits, sign-extend when signed). For lossy syntaxes a value the codec
 * overshot past the Bits Stored range is clamped to it instead (masking would wrap it around).
 */
function decodedToStored(h: DicomHeader, d: DecodedCodestream, codec: CompressedCodec): SizedFrame {
  const name = `${CODEC_NAMES[codec]} frame`;
  const width = sizeAtLevel(h.columns, d.level);
  const height = sizeAtLevel(h.rows, d.level);
  if (d.width !== width || d.height !== height) {
    const at = d.level ? ` at resolution level ${d.level} (${width}x${height} expected)` : '';
    throw new AppError('UNPROCESSABLE', `DICOM ${name} is ${d.width}x${d.height}${at} but the header says ${h.columns}x${h.rows}`);
  }
  if (d.components !== h.samplesPerPixel) {
    throw new AppError('UNPROCESSABLE', `DICOM ${name} has ${d.components} component(s) but Samples per Pixel is ${h.samplesPerPixel}`);
  }
  if (d.bitsPerSample > h.bitsAllocated) {
    throw new AppError('UNPROCESSABLE', `DICOM ${name} has ${d.bitsPerSample}-bit samples, more than Bits Allocated (${h.bitsAllocated})`);
  }
  const n = width * height;
  const size = { width, height, level: d.level };
  if (h.samplesPerPixel === 3) {
    const bytes = d.samples instanceof Uint8Array ? d.samples : Uint8Array.from(d.samples, (v) => Math.max(0, Math.min(255, v)));
    const { grey, isGreyscaleContent } = colourToGrey(bytes, n, d.planar, h.photometric === 'YBR_FULL');
    return { values: grey, colour: true, isGreyscaleContent, ...size };
  }
  const signedOut = h.pixelRepresentation === 1;
  const src = d.samples;
  // A lossless full-size unsigned frame whose precision fits Bits Stored already holds the stored
  // values in the array the native path would use: no copy (saves a pass over 4M samples at 2048²).
  if (!signedOut && !d.signed && d.level === 0 && !LOSSY_SYNTAXES.has(h.transferSyntax) && d.bitsPerSample <= h.bitsStored && src.length >= n &&
    (h.bitsAllocated === 16 ? src instanceof Uint16Array : src instanceof Uint8Array)) {
    return { values: src.length === n ? src : src.subarray(0, n), colour: false, isGreyscaleContent: true, ...size };
  }
  // The decoders hand over arrays of their own (copied out of the WASM heap): an unsigned frame of
  // the output's type is masked in place, and its range is taken in the same pass.
  const inPlace = !signedOut && src.length === n && (h.bitsAllocated === 16 ? src instanceof Uint16Array : src instanceof Uint8Array);
  const out = inPlace ? src : h.bitsAllocated === 8
    ? (signedOut ? new Int8Array(n) : new Uint8Array(n))
    : (signedOut ? new Int16Array(n) : new Uint16Array(n));
  const bits = h.bitsStored;
  const mask = bits >= 32 ? -1 : (2 ** bits) - 1;
  const signBit = 2 ** (bits - 1);
  const wrap = 2 ** bits;
  // A value is a number (clampable) when the codestream's signedness is the header's; an
  // unsigned codestream carrying signed data holds two's-complement bit patterns.
  // A reduced level is a filtered picture even from a lossless codestream: it may overshoot too.
  const clamp = (LOSSY_SYNTAXES.has(h.transferSyntax) || d.level > 0) && d.signed === signedOut;
  if (clamp) {
    const lo = signedOut ? -signBit : 0;
    const hi = signedOut ? signBit - 1 : mask;
    for (let i = 0; i < n; i++) {
      const v = src[i]!;
      out[i] = v < lo ? lo : v > hi ? hi : v;
    }
  } else if (!signedOut) {
    let min = mask;
    let max = 0;
    for (let i = 0; i < n; i++) {
      const v = src[i]! & mask;
      out[i] = v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    return { values: out, colour: false, isGreyscaleContent: true, range: [min, max], ...size };
  } else {
    for (let i = 0; i < n; i++) {
      const v = src[i]! & mask;
      out[i] = v & signBit ? v - wrap : v;
    }
  }
  return { values: out, colour: false, isGreyscaleContent: true, ...size };
}

/**
 * The resolution level for `targetSide` (see `DecodeDicomOptions.targetSide`): JPEG 2000 and
 * HTJ2K only, the highest level whose shorter side keeps {@link REDUCED_DECODE_MARGIN}× the target.
 */
function reducedLevel(h: DicomHeader, codec: PixelCodec, targetSide: number | undefined): number {
  if (!targetSide || targetSide < 1 || (codec !== 'j2k' && codec !== 'htj2k')) return 0;
  const need = REDUCED_DECODE_MARGIN * targetSide;
  let level = 0;
  while (level < 8 && Math.min(sizeAtLevel(h.columns, level + 1), sizeAtLevel(h.rows, level + 1)) >= need) level++;
  return level;
}

async function readStoredFrame(h: DicomHeader, codec: PixelCodec, failOn: 'warning' | 'error', level = 0): Promise<SizedFrame> {
  const full = { width: h.columns, height: h.rows, level: 0 };
  if (codec === 'jpeg') return { ...(await decodeJpegFrame(h, encapsulatedFrame(h), failOn)), ...full };
  if (isCompressedCodec(codec)) return decodedToStored(h, await decodeCodestream(codec, encapsulatedFrame(h), { level, size: { width: h.columns, height: h.rows } }), codec);
  const bytes = codec === 'rle'
    ? decodeRleFrame(encapsulatedFrame(h), h.rows, h.columns, h.samplesPerPixel, h.bitsAllocated)
    : nativeFrame(h, codec === 'native-be');
  if (h.samplesPerPixel === 3) {
    // RLE stores one segment per sample, so its output is interleaved regardless of the header.
    const planar = codec !== 'rle' && h.planarConfiguration === 1;
    const { grey, isGreyscaleContent } = colourToGrey(bytes, h.rows * h.columns, planar, h.photometric === 'YBR_FULL');
    return { values: grey, colour: true, isGreyscaleContent, ...full };
  }
  return { values: typedStored(h, bytes), colour: false, isGreyscaleContent: true, ...full };
}

function range(values: ArrayLike<number>): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

interface VoiLut {
  first: number;
  data: Uint16Array;
  maxOut: number;
}

function readVoiLut(h: DicomHeader): VoiLut | null {
  const seq = h.dataSet.elements.x00283010;
  const item = seq?.items?.[0]?.dataSet;
  if (!item) return null;
  const desc = item.elements.x00283002;
  const lutEl = item.elements.x00283006;
  if (!desc || desc.length < 6 || !lutEl || lutEl.length === 0) return null;
  const entries = item.uint16('x00283002', 0) || 65536;
  const first = h.pixelRepresentation ? (item.int16('x00283002', 1) ?? 0) : (item.uint16('x00283002', 1) ?? 0);
  const bits = item.uint16('x00283002', 2) ?? 16;
  if (bits < 1 || bits > 16) return null;
  const data = new Uint16Array(entries);
  const bytes = item.byteArray;
  const twoBytesEach = lutEl.length >= entries * 2;
  if (!twoBytesEach && lutEl.length < entries) return null;
  const parser = item.byteArrayParser;
  for (let i = 0; i < entries; i++) {
    data[i] = twoBytesEach ? parser.readUint16(bytes, lutEl.dataOffset + 2 * i) : bytes[lutEl.dataOffset + i]!;
  }
  return { first, data, maxOut: 2 ** bits - 1 };
}

function windowFunction(h: DicomHeader): VoiFunction {
  const fn = str(h.dataSet, 'x00281056')?.toUpperCase();
  return fn === 'LINEAR_EXACT' || fn === 'SIGMOID' ? fn : 'LINEAR';
}

/** Maps a modality value to 0..255 through a window (PS3.3 C.11.2.1.2). */
function applyWindow(x: number, c: number, w: number, fn: VoiFunction): number {
  if (fn === 'SIGMOID') return 255 / (1 + Math.exp((-4 * (x - c)) / w));
  if (fn === 'LINEAR_EXACT') {
    if (x <= c - w / 2) return 0;
    if (x > c + w / 2) return 255;
    return ((x - c) / w + 0.5) * 255;
  }
  if (x <= c - 0.5 - (w - 1) / 2) return 0;
  if (x > c - 0.5 + (w - 1) / 2) return 255;
  return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255;
}

interface Transform {
  lut: Uint8Array;
  offset: number;
  window: DicomImageMeta['window'];
  voiSource: VoiSource;
}

function buildTransform(h: DicomHeader, frame: StoredFrame, stored: [number, number], slope: number, intercept: number, voiMode: 'auto' | 'minmax', invert: boolean): Transform {
  const [sMin, sMax] = stored;
  const size = sMax - sMin + 1;
  const lut = new Uint8Array(size);
  let window: DicomImageMeta['window'] = null;
  let voiSource: VoiSource;
  let map: (m: number) => number;

  const center = num(h.dataSet, 'x00281050');
  const width = num(h.dataSet, 'x00281051');
  const fn = windowFunction(h);
  const voiLut = voiMode === 'auto' && !frame.colour ? readVoiLut(h) : null;
  if (frame.colour) {
    voiSource = 'none';
    map = (m) => m;
  } else if (voiMode === 'auto' && center !== null && width !== null && (fn === 'LINEAR' ? width >= 1 : width > 0)) {
    voiSource = 'window';
    window = { center, width, fn };
    map = (m) => applyWindow(m, center, width, fn);
  } else if (voiLut) {
    voiSource = 'lut';
    const last = voiLut.data.length - 1;
    map = (m) => {
      const i = Math.min(last, Math.max(0, Math.floor(m) - voiLut.first));
      return (voiLut.data[i]! / voiLut.maxOut) * 255;
    };
  } else {
    voiSource = 'minmax';
    const a = sMin * slope + intercept;
    const b = sMax * slope + intercept;
    const lo = Math.min(a, b);
    const span = Math.max(a, b) - lo;
    map = span > 0 ? (m) => ((m - lo) / span) * 255 : () => 0;
  }
  const doRescale = !frame.colour;
  for (let i = 0; i < size; i++) {
    const s = sMin + i;
    const m = doRescale ? s * slope + intercept : s;
    const y = Math.min(255, Math.max(0, Math.round(map(m))));
    lut[i] = invert ? 255 - y : y;
  }
  return { lut, offset: sMin, window, voiSource };
}

function pixelSpacing(ds: DataSet): [number, number] | null {
  for (const tag of ['x00280030', 'x00181164']) {
    const r = num(ds, tag, 0);
    const c = num(ds, tag, 1);
    if (r !== null && c !== null) return [r, c];
  }
  return null;
}

/** The first frame's stored values, before the modality LUT (see `readDicomStoredFrame`). */
export interface DicomStoredFrame {
  header: DicomHeader;
  /** Grey: stored values, signed where Pixel Representation is 1. Colour: luminance 0..255. */
  values: Uint8Array | Int8Array | Uint16Array | Int16Array;
  colour: boolean;
}

/**
 * Reads the first frame's stored values through the same checks and decoders as `decodeDicom`
 * (for codec tests and benchmarks: a lossless syntax must give back the encoder's input exactly).
 * @throws AppError as `decodeDicom`.
 */
export async function readDicomStoredFrame(buf: Uint8Array, options: Pick<DecodeDicomOptions, 'maxPixels' | 'failOn'> = {}): Promise<DicomStoredFrame> {
  const header = readDicomHeader(buf);
  const maxPixels = options.maxPixels ?? DEFAULT_DICOM_MAX_PIXELS;
  if (header.rows * header.columns > maxPixels) {
    throw new AppError('PAYLOAD_TOO_LARGE', `DICOM image is ${header.columns}x${header.rows}, above the ${maxPixels}-pixel limit`);
  }
  const frame = await readStoredFrame(header, checkSupported(header), options.failOn ?? 'warning');
  return { header, values: frame.values, colour: frame.colour };
}

/**
 * Decodes the first frame of a DICOM image to display-ready 8-bit greyscale.
 *
 * @param buf - a Part 10 file, or a raw dataset without preamble.
 * @throws AppError INVALID_INPUT for an empty buffer; UNPROCESSABLE for garbage, a dataset with
 *   no pixel data, or corrupt/truncated pixels; UNSUPPORTED_MEDIA_TYPE for transfer syntaxes or
 *   pixel formats this module does not decode (the message names them); PAYLOAD_TOO_LARGE
 *   above `maxPixels`.
 * @example
 * const img = await decodeDicom(await readFile('chest.dcm'));
 * await sharp(img.pixels, { raw: { width: img.width, height: img.height, channels: 1 } }).png().toFile('chest.png');
 */
export async function decodeDicom(buf: Uint8Array, options: DecodeDicomOptions = {}): Promise<DicomImage> {
  const h = readDicomHeader(buf);
  const maxPixels = options.maxPixels ?? DEFAULT_DICOM_MAX_PIXELS;
  if (h.rows * h.columns > maxPixels) {
    throw new AppError('PAYLOAD_TOO_LARGE', `DICOM image is ${h.columns}x${h.rows}, above the ${maxPixels}-pixel limit`);
  }
  const codec = checkSupported(h);
  const { slope: rescaleSlope, intercept } = modalityRescale(h.dataSet);
  const frame = await readStoredFrame(h, codec, options.failOn ?? 'warning', reducedLevel(h, codec, options.targetSide));
  const stored = frame.range ?? range(frame.values);
  const invert = h.photometric === 'MONOCHROME1';
  const t = buildTransform(h, frame, stored, rescaleSlope, intercept, options.voi ?? 'auto', invert);

  const n = frame.width * frame.height;
  const pixels = new Uint8Array(n);
  const { lut, offset } = t;
  const values = frame.values;
  for (let i = 0; i < n; i++) pixels[i] = lut[values[i]! - offset]!;

  const ds = h.dataSet;
  return {
    width: frame.width,
    height: frame.height,
    level: frame.level,
    pixels,
    bitsStored: h.bitsStored,
    photometric: h.photometric,
    transferSyntax: h.transferSyntax,
    modality: h.modality,
    meta: {
      transferSyntaxName: TRANSFER_SYNTAXES[h.transferSyntax] ?? h.transferSyntax,
      sopClassUid: str(ds, 'x00080016'),
      rows: h.rows,
      columns: h.columns,
      bitsAllocated: h.bitsAllocated,
      bitsStored: h.bitsStored,
      highBit: h.highBit,
      pixelRepresentation: h.pixelRepresentation,
      samplesPerPixel: h.samplesPerPixel,
      numberOfFrames: h.numberOfFrames,
      rescaleSlope,
      rescaleIntercept: intercept,
      window: t.window,
      voiSource: t.voiSource,
      inverted: invert,
      storedRange: stored,
      isGreyscaleContent: frame.isGreyscaleContent,
      viewPosition: str(ds, 'x00185101'),
      bodyPartExamined: str(ds, 'x00180015'),
      pixelSpacing: pixelSpacing(ds),
      burnedInAnnotation: str(ds, 'x00280301'),
    },
  };
}
