/**
 * Decoders for the compressed DICOM pixel encodings that sharp cannot read, all maintained npm
 * codecs (no hand-written decoding):
 *
 * | codec | transfer syntaxes | decoder |
 * |---|---|---|
 * | `jpeg-lossless` | JPEG Lossless process 14 (.4.57) and its SV1 form (.4.70) | DCMTK's IJG libjpeg 8/12/16-bit (dcmjs-codecs, WASM) |
 * | `jpeg-12bit` | 12-bit JPEG Extended (.4.51, process 4) | the same IJG build |
 * | `jpeg-ls` | JPEG-LS lossless (.4.80) / near-lossless (.4.81) | CharLS (@cornerstonejs/codec-charls, WASM) |
 * | `j2k` | JPEG 2000 lossless (.4.90) / lossy (.4.91) | OpenJPEG (@cornerstonejs/codec-openjpeg, WASM) |
 * | `htj2k` | HTJ2K lossless (.4.201), lossless RPCL (.4.202), lossy (.4.203) | OpenJPH (@cornerstonejs/codec-openjph, WASM) |
 *
 * Each WASM module is instantiated once per thread, on first use (decoding runs in the image
 * worker pool, so that is once per worker), and dropped after any decoder failure so a module left
 * in a bad state is never reused (a fresh instance costs tens of milliseconds). Every failure is an AppError UNPROCESSABLE naming the codec.
 *
 * JPEG 2000 and HTJ2K can also be decoded at a lower resolution level (`level`): the wavelet's
 * low-pass band, each level halving width and height, for callers that only need a small picture
 * (preprocessing for a 224² model input). Exact pixels always come from level 0.
 */
import { AppError } from '../../errors.js';
import type { JpegLsFrameDecoder, WasmFrameDecoder, WasmFrameInfo, WaveletFrameDecoder } from './wasm-types.js';

export type CompressedCodec = 'jpeg-lossless' | 'jpeg-12bit' | 'jpeg-ls' | 'j2k' | 'htj2k';

export const CODEC_NAMES: Readonly<Record<CompressedCodec, string>> = {
  'jpeg-lossless': 'JPEG Lossless',
  'jpeg-12bit': 'JPEG Extended (12-bit)',
  'jpeg-ls': 'JPEG-LS',
  j2k: 'JPEG 2000',
  htj2k: 'HTJ2K',
};

/** One decoded frame, exactly as the codestream describes it (at `level`). */
export interface DecodedCodestream {
  /** Size of the decoded samples: the codestream's size at `level`. */
  width: number;
  height: number;
  /** Resolution level decoded: 0 full size; n = width and height halved n times, rounded up. */
  level: number;
  components: number;
  /** Sample precision the codestream declares. */
  bitsPerSample: number;
  /** Whether the codestream declares signed samples (JPEG 2000 family only). */
  signed: boolean;
  /** Samples: 8-bit for precision <= 8, else 16-bit; signed arrays when `signed`. */
  samples: Uint8Array | Int8Array | Uint16Array | Int16Array;
  /** Colour samples stored plane after plane instead of pixel-interleaved. */
  planar: boolean;
}

type Factory = (options?: { print?: (text: string) => void; printErr?: (text: string) => void }) => Promise<unknown>;
// The modules' own logging (OpenJPEG's "[INFO] …", OpenJPH's error lines) is dropped: failures
// surface as exceptions or as an empty frame, which are turned into messages here. A fresh object
// per module: Emscripten builds the module on the object it is given, so sharing one would make
// the second module's bindings collide with the first's.
const quiet = (): { print: () => void; printErr: () => void } => ({ print: () => {}, printErr: () => {} });

interface CharlsModule { JpegLSDecoder: new () => JpegLsFrameDecoder }
interface OpenJpegModule { J2KDecoder: new () => WaveletFrameDecoder }
interface OpenJphModule { HTJ2KDecoder: new () => WaveletFrameDecoder }

/** dcmjs-codecs' NativeCodecs: one WASM instance per thread, held by the class itself. */
interface IjgCodecs {
  decodeJpeg(context: unknown, parameters?: { convertColorspaceToRgb?: boolean }): { getDecodedBuffer(): Uint8Array | undefined };
  release(): void;
}
interface IjgModule { codecs: IjgCodecs; Context: new (attrs: Record<string, unknown>) => unknown }

const loaded: { charls?: Promise<CharlsModule>; openjpeg?: Promise<OpenJpegModule>; openjph?: Promise<OpenJphModule>; ijg?: Promise<IjgModule> } = {};

/** Loads a module once per thread; a failed instantiation is retried on the next image rather than cached. */
function lazy<K extends keyof typeof loaded>(key: K, create: () => NonNullable<(typeof loaded)[K]>): NonNullable<(typeof loaded)[K]> {
  const cached = loaded[key];
  if (cached) return cached as NonNullable<(typeof loaded)[K]>;
  const made = create();
  made.catch(() => { if (loaded[key] === made) delete loaded[key]; });
  loaded[key] = made;
  return made;
}

/** A cornerstone codec: an Emscripten factory, instantiated with its logging dropped. */
const emscripten = <M>(load: () => Promise<{ default: Factory }>) => (): Promise<M> => load().then((m) => m.default(quiet()) as Promise<M>);

const charls = (): Promise<CharlsModule> => lazy('charls', emscripten(() => import('@cornerstonejs/codec-charls/decodewasmjs')));
const openjpeg = (): Promise<OpenJpegModule> => lazy('openjpeg', emscripten(() => import('@cornerstonejs/codec-openjpeg/decodewasmjs')));
const openjph = (): Promise<OpenJphModule> => lazy('openjph', emscripten(() => import('@cornerstonejs/codec-openjph/wasmjs')));

const ijg = (): Promise<IjgModule> =>
  lazy('ijg', () =>
    import('dcmjs-codecs').then(async (m) => {
      // A webpack CommonJS bundle: Node gives its exports as the default export only.
      const { NativeCodecs, Context } = (m as unknown as { default?: typeof m }).default ?? m;
      await NativeCodecs.initializeAsync({ logCodecsInfo: false, logCodecsTrace: false });
      return { codecs: NativeCodecs as IjgCodecs, Context: Context as IjgModule['Context'] };
    }),
  );

/** The modules' keys in `loaded`, per codec, for dropping one after a failure. */
const MODULE_OF: Record<WasmCodec, keyof typeof loaded> = { 'jpeg-ls': 'charls', j2k: 'openjpeg', htj2k: 'openjph' };
type WasmCodec = 'jpeg-ls' | 'j2k' | 'htj2k';

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  // Emscripten C++ exceptions arrive as numbers (pointers) or opaque objects.
  if (typeof err === 'number') return `decoder exception ${err}`;
  return String(err);
}

function fail(codec: CompressedCodec, reason: string): never {
  throw new AppError('UNPROCESSABLE', `DICOM ${CODEC_NAMES[codec]} pixel data could not be decoded: ${reason}`);
}

/**
 * JPEG's EOI and JPEG 2000's EOC are both FF D9. A codestream cut short lacks it, and the JPEG
 * 2000 decoders then return a partial picture without any error, so it is required here (within
 * the last 16 bytes: fragments are padded to even length, some writers pad more).
 */
function requireEndMarker(codec: CompressedCodec, data: Uint8Array): void {
  for (let i = data.length - 2; i >= Math.max(0, data.length - 16); i--) {
    if (data[i] === 0xff && data[i + 1] === 0xd9) return;
  }
  fail(codec, `the codestream is truncated (${data.length} bytes, no end-of-image marker FF D9)`);
}

function requireStartMarker(codec: CompressedCodec, data: Uint8Array): void {
  // JPEG SOI FF D8; JPEG 2000 codestream SOC FF 4F (a JP2 file box starts 00 00 00 0C 6A 50).
  const jp2 = data.length >= 8 && data[4] === 0x6a && data[5] === 0x50 && data[6] === 0x20 && data[7] === 0x20;
  const jpeg = codec === 'jpeg-lossless' || codec === 'jpeg-12bit' || codec === 'jpeg-ls';
  const ok = jpeg ? data[0] === 0xff && data[1] === 0xd8 : (data[0] === 0xff && data[1] === 0x4f) || jp2;
  if (!ok) fail(codec, `the frame does not start with a ${jpeg ? 'JPEG SOI (FF D8)' : 'JPEG 2000 SOC (FF 4F)'} marker`);
}

/** `side` halved `level` times, rounded up: a JPEG 2000 resolution level's size (image offset 0). */
export function sizeAtLevel(side: number, level: number): number {
  return Math.ceil(side / 2 ** level);
}

/**
 * Decodes at resolution level `level` or, where the codestream has fewer decomposition levels or
 * the reduced decode fails, at full size. Returns the level decoded.
 */
function decodeAtLevel(codec: WasmCodec, decoder: WasmFrameDecoder, level: number): number {
  if (level <= 0 || codec === 'jpeg-ls') {
    decoder.decode();
    return 0;
  }
  const wavelet = decoder as WaveletFrameDecoder;
  if (codec === 'htj2k') {
    wavelet.readHeader();
    // OpenJPH returns a (wrong) picture for a level past the codestream's decompositions.
    const l = Math.min(level, wavelet.getNumDecompositions());
    if (l > 0) wavelet.decodeSubResolution(l);
    else wavelet.decode();
    return Math.max(0, l);
  }
  // The OpenJPEG build reads no header before decoding; a level it cannot give decodes nothing
  // (frame info zero), and then the full picture is decoded instead.
  wavelet.decodeSubResolution(level, 0);
  if (wavelet.getFrameInfo().width) return level;
  decoder.decode();
  return 0;
}

function wasmDecode(codec: WasmCodec, decoder: WasmFrameDecoder, data: Uint8Array, wantedLevel: number): DecodedCodestream {
  let info: WasmFrameInfo;
  let samples: DecodedCodestream['samples'];
  let planar = false;
  let level = 0;
  let width = 0;
  let height = 0;
  try {
    decoder.getEncodedBuffer(data.length).set(data);
    level = decodeAtLevel(codec, decoder, wantedLevel);
    info = decoder.getFrameInfo();
    if (!info.width || !info.height || !info.componentCount || !info.bitsPerSample) {
      fail(codec, 'the decoder could not read the codestream');
    }
    // Frame info keeps the full size whatever the level; the samples are at the level's size.
    width = sizeAtLevel(info.width, level);
    height = sizeAtLevel(info.height, level);
    const heap = decoder.getDecodedBuffer();
    const wide = info.bitsPerSample > 8;
    const expected = width * height * info.componentCount * (wide ? 2 : 1);
    if (heap.length < expected) fail(codec, `the decoder produced ${heap.length} bytes, ${expected} expected for ${width}x${height}x${info.componentCount} at ${info.bitsPerSample} bits`);
    // Copy out of the module's heap (into a fresh, aligned buffer) before the decoder is freed.
    const bytes = new Uint8Array(expected);
    bytes.set(heap.subarray(0, expected));
    const signed = info.isSigned === true;
    if (codec === 'htj2k' && signed) {
      // openjphjs (@cornerstonejs/codec-openjph 2.4.x) saturates every negative sample of a signed
      // codestream to +32767 (checked against ojph_expand): refuse rather than return a wrong image.
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', `DICOM ${CODEC_NAMES[codec]} with signed samples is not supported (the HTJ2K decoder in use corrupts negative values)`);
    }
    samples = wide
      ? (signed ? new Int16Array(bytes.buffer) : new Uint16Array(bytes.buffer))
      : (signed ? new Int8Array(bytes.buffer) : bytes);
    if (codec === 'jpeg-ls' && info.componentCount > 1) planar = (decoder as JpegLsFrameDecoder).getInterleaveMode() === 0;
  } catch (err) {
    // A failed decode may leave the module in an undefined state (after an Emscripten abort it
    // refuses every later call): drop it, the next image instantiates a fresh one.
    delete loaded[MODULE_OF[codec]];
    if (err instanceof AppError) throw err;
    fail(codec, errorText(err));
  } finally {
    try { decoder.delete(); } catch { delete loaded[MODULE_OF[codec]]; }
  }
  return { width, height, level, components: info.componentCount, bitsPerSample: info.bitsPerSample, signed: info.isSigned === true, samples, planar };
}

async function instantiate<M>(codec: CompressedCodec, load: () => Promise<M>): Promise<M> {
  try {
    return await load();
  } catch (err) {
    throw new AppError('INTERNAL', `The ${CODEC_NAMES[codec]} decoder could not be loaded: ${errorText(err)}`);
  }
}

/** A JPEG frame header (SOFn): what the codestream says it holds. */
interface JpegFrameHeader { process: number; precision: number; height: number; width: number; components: number }

/** Reads the SOFn segment before the first scan (header parsing only; the decoder checks it again). */
function jpegFrameHeader(codec: CompressedCodec, data: Uint8Array): JpegFrameHeader {
  let i = 2;
  while (i + 4 <= data.length) {
    if (data[i] !== 0xff) fail(codec, `no JPEG marker at byte ${i}`);
    const marker = data[i + 1]!;
    if (marker === 0xff) { i++; continue; } // fill byte
    if (marker === 0xda || marker === 0xd9) break; // a scan (or the end) before any frame header
    const length = (data[i + 2]! << 8) | data[i + 3]!;
    if (length < 2) fail(codec, `a JPEG segment at byte ${i} declares length ${length}`);
    // SOF0..SOF15 without DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (length < 8 || i + 10 > data.length) fail(codec, 'the JPEG frame header is truncated');
      return { process: marker - 0xc0, precision: data[i + 4]!, height: (data[i + 5]! << 8) | data[i + 6]!, width: (data[i + 7]! << 8) | data[i + 8]!, components: data[i + 9]! };
    }
    i += 2 + length;
  }
  fail(codec, 'the codestream has no JPEG frame header (SOF)');
}

/**
 * JPEG Lossless and 12-bit JPEG Extended with DCMTK's IJG libjpeg (8, 12 and 16-bit builds; the
 * same code as dcmtk's `dcmdjpeg`), compiled to WASM by dcmjs-codecs.
 */
async function decodeIjg(codec: 'jpeg-lossless' | 'jpeg-12bit', data: Uint8Array, size: DecodeCodestreamOptions['size']): Promise<DecodedCodestream> {
  const sof = jpegFrameHeader(codec, data);
  // The decoder allocates what the frame header says: a header that disagrees with the file's is refused first.
  if (size && (sof.width !== size.width || sof.height !== size.height)) {
    fail(codec, `the frame is ${sof.width}x${sof.height} but the header says ${size.width}x${size.height}`);
  }
  const lossless = sof.process === 3 || sof.process === 7 || sof.process === 11 || sof.process === 15;
  if (codec === 'jpeg-lossless' && !lossless) fail(codec, `the codestream is not lossless JPEG (SOF${sof.process})`);
  if (codec === 'jpeg-12bit' && (lossless || sof.precision !== 12)) fail(codec, `the codestream is SOF${sof.process} with ${sof.precision}-bit samples, not 12-bit DCT JPEG`);
  if (!sof.width || !sof.height || sof.precision < 2 || sof.precision > 16 || (sof.components !== 1 && sof.components !== 3)) {
    fail(codec, `the frame header declares ${sof.width}x${sof.height}, ${sof.components} component(s) of ${sof.precision} bits`);
  }
  const m = await instantiate(codec, ijg);
  const wide = sof.precision > 8;
  const expected = sof.width * sof.height * sof.components * (wide ? 2 : 1);
  let bytes: Uint8Array | undefined;
  try {
    const context = new m.Context({
      width: sof.width, height: sof.height, bitsAllocated: wide ? 16 : 8, bitsStored: sof.precision, samplesPerPixel: sof.components,
      pixelRepresentation: 0, planarConfiguration: 0, photometricInterpretation: sof.components === 1 ? 'MONOCHROME2' : 'RGB', encodedBuffer: data,
    });
    bytes = m.codecs.decodeJpeg(context, { convertColorspaceToRgb: false }).getDecodedBuffer();
  } catch (err) {
    // An exception thrown through the WASM frames leaves the module's stack and heap undefined:
    // this thread's instance is dropped and the next image builds a fresh one.
    m.codecs.release();
    delete loaded.ijg;
    fail(codec, errorText(err));
  }
  if (!bytes || bytes.length < expected) fail(codec, `the decoder produced ${bytes?.length ?? 0} bytes, ${expected} expected for ${sof.width}x${sof.height}x${sof.components} at ${sof.precision} bits`);
  // The library returns a copy out of the module's heap; make it exactly the frame, aligned for 16-bit views.
  const own = bytes.byteOffset === 0 && bytes.length === expected ? bytes : bytes.slice(0, expected);
  const samples = wide ? new Uint16Array(own.buffer, 0, expected / 2) : own;
  return { width: sof.width, height: sof.height, level: 0, components: sof.components, bitsPerSample: sof.precision, signed: false, samples, planar: false };
}

export interface DecodeCodestreamOptions {
  /**
   * JPEG 2000 / HTJ2K only: decode at this resolution level (see `DecodedCodestream.level`), or at
   * full size where the codestream has fewer decomposition levels. Default 0 (full size, exact).
   */
  level?: number;
  /** The frame size the DICOM header declares; JPEG frames that say otherwise are refused before decoding. */
  size?: { width: number; height: number };
}

/**
 * Decodes one compressed frame (the whole codestream of one frame, fragments joined).
 * @throws AppError UNPROCESSABLE for a truncated, corrupt or unreadable codestream (the message
 *   names the codec); INTERNAL if a decoder module cannot be loaded at all.
 */
export async function decodeCodestream(codec: CompressedCodec, data: Uint8Array, options: DecodeCodestreamOptions = {}): Promise<DecodedCodestream> {
  const level = Math.max(0, Math.floor(options.level ?? 0));
  if (data.length < 4) fail(codec, `the frame is only ${data.length} bytes`);
  requireStartMarker(codec, data);
  requireEndMarker(codec, data);
  switch (codec) {
    case 'jpeg-lossless':
    case 'jpeg-12bit':
      return decodeIjg(codec, data, options.size);
    case 'jpeg-ls': {
      const m = await instantiate(codec, charls);
      return wasmDecode(codec, new m.JpegLSDecoder(), data, 0);
    }
    case 'j2k': {
      const m = await instantiate(codec, openjpeg);
      return wasmDecode(codec, new m.J2KDecoder(), data, level);
    }
    case 'htj2k': {
      const m = await instantiate(codec, openjph);
      return wasmDecode(codec, new m.HTJ2KDecoder(), data, level);
    }
  }
}
