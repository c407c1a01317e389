/**
 * Compressed DICOM fixtures for the codec tests, made at test time with Debian's real encoders
 * (dcmtk `dcmcjpeg`/`dcmcjpls`/`dcmcrle`, GDCM `gdcmconv`, OpenJPH `ojph_compress`) from native
 * Explicit VR Little Endian files this project writes. Not a test file itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { readDicomDict, toArrayBuffer, writeDicomDict } from '../../../src/core/imaging/dcmjs-io.js';
import { makeDicom } from '../../../src/core/imaging/dicom-writer.js';
import type { MakeDicomOptions } from '../../../src/core/imaging/dicom-writer.js';
import { renderChestXray } from '../../../src/core/imaging/synthetic.js';

export interface NativeSource {
  name: string;
  dicom: Buffer;
  /** The stored values written, row-major. */
  pixels: Uint8Array | Uint16Array | Int16Array;
  width: number;
  height: number;
  bitsStored: number;
  signed: boolean;
}

export interface Encoding {
  /** Transfer syntax UID the encoder writes. */
  ts: string;
  label: string;
  /** The binary it needs (skip, naming it, when absent). */
  tool: string;
  lossless: boolean;
  /** Largest |decoded − source| allowed in stored values, for lossy encodings (as a fraction of 2^BitsStored). */
  maxError?: number;
  /** Set when the encoder refuses signed input (dcmcjpls near-lossless). */
  unsignedOnly?: boolean;
  /** Runs the encoder: native file in, compressed file out. */
  encode(src: NativeSource, input: string, output: string): void;
}

/** The Debian package each encoder comes from (`node scripts/setup.mjs --test` installs them). */
const PACKAGE_OF: Record<string, string> = {
  dcmconv: 'dcmtk', dcmcjpeg: 'dcmtk', dcmcjpls: 'dcmtk', dcmcrle: 'dcmtk', dcmdjpeg: 'dcmtk', img2dcm: 'dcmtk', gdcmconv: 'libgdcm-tools', ojph_compress: 'openjph-tools',
};

/** The skip message for a missing encoder: names the binary and its package. */
export function missingTool(tool: string): string {
  return `${tool} not found (Debian package ${PACKAGE_OF[tool] ?? '?'}; \`node scripts/setup.mjs --test\` installs it): skipped`;
}

export function haveTool(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The synthetic radiograph as 8-bit, 12-in-16-bit and signed 16-bit native files. */
export function nativeSources(size = 128): NativeSource[] {
  const { width, height, pixels } = renderChestXray({ seed: 'codec-fixture', size });
  const n = width * height;
  // 12-bit: the 8-bit picture scaled up plus low-order detail, so every one of the 12 bits matters.
  const p12 = new Uint16Array(n);
  for (let i = 0; i < n; i++) p12[i] = pixels[i]! * 16 + ((i * 7) % 16);
  // Signed 16-bit (CT-like): negative and positive values with an intercept.
  const s16 = new Int16Array(n);
  for (let i = 0; i < n; i++) s16[i] = (pixels[i]! - 100) * 40 + (i % 13);
  const make = (name: string, opts: Omit<MakeDicomOptions, 'width' | 'height'>, bitsStored: number): NativeSource => ({
    name,
    dicom: makeDicom({ width, height, ...opts }),
    pixels: opts.pixels,
    width,
    height,
    bitsStored,
    signed: opts.pixels instanceof Int16Array,
  });
  return [
    make('8-bit MONOCHROME2', { pixels, bitsAllocated: 8, photometric: 'MONOCHROME2' }, 8),
    make('12-bit MONOCHROME1, rescale + window', {
      pixels: p12, bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME1',
      rescaleSlope: 0.5, rescaleIntercept: -100, windowCenter: 900, windowWidth: 1600,
    }, 12),
    make('signed 16-bit MONOCHROME2', { pixels: s16, bitsAllocated: 16, photometric: 'MONOCHROME2', rescaleIntercept: -1024 }, 16),
  ];
}

/** Native Pixel Data bytes of a file written by `makeDicom`. */
export function nativePixelBytes(dicom: Buffer): Buffer {
  const ds = dicomParser.parseDicom(dicom);
  const el = ds.elements.x7fe00010!;
  return dicom.subarray(el.dataOffset, el.dataOffset + el.length);
}

/** The first frame's codestream of an encapsulated file. */
export function firstFrame(dicom: Buffer): Uint8Array {
  const ds = dicomParser.parseDicom(dicom);
  const el = ds.elements.x7fe00010!;
  // A copy, as a plain Uint8Array: on a Buffer, `slice` would be a view of the file's bytes.
  return new Uint8Array(dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments!.length));
}

/** `source` with its Pixel Data replaced by one encapsulated frame under transfer syntax `ts`. */
export function encapsulate(source: Buffer, ts: string, frame: Uint8Array): Buffer {
  const file = readDicomDict(source);
  file.meta['00020010'] = { vr: 'UI', Value: [ts] };
  file.dict['7FE00010'] = { vr: 'OB', Value: [toArrayBuffer(frame)] };
  return writeDicomDict(file.meta, file.dict);
}

/** HTJ2K: OpenJPH encodes a raw frame to a codestream, wrapped here as DICOM. */
function ojph(ts: string, extra: string[]): Encoding['encode'] {
  return (src, input, output) => {
    const raw = `${input}.raw`;
    const j2c = `${output}.j2c`;
    writeFileSync(raw, nativePixelBytes(readFileSync(input)));
    run('ojph_compress', [
      '-i', raw, '-o', j2c, '-dims', `{${src.width},${src.height}}`, '-num_comps', '1', '-downsamp', '{1,1}',
      '-signed', String(src.signed), '-bit_depth', String(src.bitsStored), ...extra,
    ]);
    writeFileSync(output, encapsulate(readFileSync(input), ts, readFileSync(j2c)));
  };
}

const tool = (cmd: string, args: string[]): Encoding['encode'] => (_src, input, output) => run(cmd, [...args, input, output]);

export const ENCODINGS: readonly Encoding[] = [
  { ts: '1.2.840.10008.1.2', label: 'Implicit VR Little Endian (dcmconv +ti)', tool: 'dcmconv', lossless: true, encode: tool('dcmconv', ['+ti']) },
  { ts: '1.2.840.10008.1.2.2', label: 'Explicit VR Big Endian (dcmconv +tb)', tool: 'dcmconv', lossless: true, encode: tool('dcmconv', ['+tb']) },
  { ts: '1.2.840.10008.1.2.1.99', label: 'Deflated Explicit VR Little Endian (dcmconv +td)', tool: 'dcmconv', lossless: true, encode: tool('dcmconv', ['+td']) },
  { ts: '1.2.840.10008.1.2.4.70', label: 'JPEG Lossless SV1 (dcmcjpeg +e1)', tool: 'dcmcjpeg', lossless: true, encode: tool('dcmcjpeg', ['+e1']) },
  { ts: '1.2.840.10008.1.2.4.57', label: 'JPEG Lossless process 14 (dcmcjpeg +el)', tool: 'dcmcjpeg', lossless: true, encode: tool('dcmcjpeg', ['+el']) },
  { ts: '1.2.840.10008.1.2.4.80', label: 'JPEG-LS lossless (dcmcjpls +el)', tool: 'dcmcjpls', lossless: true, encode: tool('dcmcjpls', ['+el']) },
  { ts: '1.2.840.10008.1.2.4.81', label: 'JPEG-LS near-lossless NEAR=2 (dcmcjpls +en)', tool: 'dcmcjpls', lossless: false, maxError: 2 / 256, unsignedOnly: true, encode: tool('dcmcjpls', ['+en', '+md', '2']) },
  { ts: '1.2.840.10008.1.2.4.90', label: 'JPEG 2000 lossless (gdcmconv --j2k)', tool: 'gdcmconv', lossless: true, encode: tool('gdcmconv', ['--j2k']) },
  { ts: '1.2.840.10008.1.2.4.91', label: 'JPEG 2000 lossy (gdcmconv --j2k --lossy --rate 4)', tool: 'gdcmconv', lossless: false, maxError: 0.05, encode: tool('gdcmconv', ['--j2k', '--lossy', '--irreversible', '-r', '4']) },
  { ts: '1.2.840.10008.1.2.4.201', label: 'HTJ2K lossless (ojph_compress -reversible true)', tool: 'ojph_compress', lossless: true, encode: ojph('1.2.840.10008.1.2.4.201', ['-reversible', 'true']) },
  { ts: '1.2.840.10008.1.2.4.202', label: 'HTJ2K lossless RPCL (ojph_compress -prog_order RPCL)', tool: 'ojph_compress', lossless: true, encode: ojph('1.2.840.10008.1.2.4.202', ['-reversible', 'true', '-prog_order', 'RPCL']) },
  { ts: '1.2.840.10008.1.2.4.203', label: 'HTJ2K lossy (ojph_compress -qstep 0.002)', tool: 'ojph_compress', lossless: false, maxError: 0.05, encode: ojph('1.2.840.10008.1.2.4.203', ['-qstep', '0.002']) },
  { ts: '1.2.840.10008.1.2.5', label: 'RLE Lossless (dcmcrle)', tool: 'dcmcrle', lossless: true, encode: tool('dcmcrle', []) },
];

/** A scratch folder for encoder inputs and outputs; `cleanup` removes it. */
export function scratch(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'xray-codecs-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Encodes `src` with `enc` in `dir`; returns the compressed file's bytes. */
export function encodeWith(enc: Encoding, src: NativeSource, dir: string, key: string): Buffer {
  const input = join(dir, `${key}-native.dcm`);
  const output = join(dir, `${key}-out.dcm`);
  writeFileSync(input, src.dicom);
  enc.encode(src, input, output);
  return readFileSync(output);
}
