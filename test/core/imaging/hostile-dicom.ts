/**
 * A corpus of malformed and hostile DICOM files, built byte by byte from a valid file made by the
 * project's writer. Each entry names the defect; tests expect every one to be refused with a 4xx
 * whose message names the reason (or, where marked, accepted), without stalling the process.
 */
import { makeDicom, type MakeDicomOptions } from '../../../src/core/imaging/dicom-writer.js';

export interface HostileDicom {
  name: string;
  bytes: Buffer;
  /** Words the refusal's message must contain (case-insensitive). */
  reason: RegExp;
}

function grey16(width: number, height: number): Uint16Array {
  const px = new Uint16Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) px[y * width + x] = 200 + ((x * 7 + y * 13) % 3000);
  return px;
}

export function validDicom(overrides: Partial<MakeDicomOptions> = {}): Buffer {
  const width = overrides.width ?? 256;
  const height = overrides.height ?? 256;
  return makeDicom({ width, height, pixels: grey16(width, height), bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME2', ...overrides });
}

/** Offset of the first data-set byte after the Part 10 meta group (uses its group length). */
export function metaEnd(file: Buffer): number {
  // (0002,0000) UL 4 <length> right after the 132-byte preamble + DICM.
  if (file.readUInt16LE(132) !== 0x0002 || file.readUInt16LE(134) !== 0x0000) throw new Error('no group length');
  return 144 + file.readUInt32LE(140);
}

function tag(group: number, element: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(group, 0);
  b.writeUInt16LE(element, 2);
  return b;
}

/** Explicit VR LE: a sequence of undefined length nested `depth` items deep. */
function nestedSequence(depth: number): Buffer {
  const open = Buffer.concat([tag(0x0008, 0x1115), Buffer.from('SQ'), Buffer.alloc(2), Buffer.from([0xff, 0xff, 0xff, 0xff]), tag(0xfffe, 0xe000), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
  const close = Buffer.concat([tag(0xfffe, 0xe00d), Buffer.alloc(4), tag(0xfffe, 0xe0dd), Buffer.alloc(4)]);
  const parts: Buffer[] = [];
  for (let i = 0; i < depth; i++) parts.push(open);
  for (let i = 0; i < depth; i++) parts.push(close);
  return Buffer.concat(parts);
}

/** Replaces the first occurrence of an ASCII string with another of the same length. */
function replaceSameLength(file: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('lengths differ');
  const at = file.indexOf(Buffer.from(from, 'latin1'));
  if (at < 0) throw new Error(`${from} not found`);
  const out = Buffer.from(file);
  out.write(to, at, 'latin1');
  return out;
}

/** Writes a new uint16 value into the first (gggg,eeee) US element of an explicit-VR data set. */
function patchUs(file: Buffer, group: number, element: number, value: number): Buffer {
  const needle = Buffer.concat([tag(group, element), Buffer.from('US')]);
  const at = file.indexOf(needle, metaEnd(file));
  if (at < 0) throw new Error(`(${group.toString(16)},${element.toString(16)}) not found`);
  const out = Buffer.from(file);
  out.writeUInt16LE(value, at + 8);
  return out;
}

export function hostileDicomCorpus(): HostileDicom[] {
  const explicit = validDicom();
  const implicit = validDicom({ transferSyntax: 'implicit', width: 362, height: 362 });
  const start = metaEnd(explicit);
  // The meta group of an explicit file (says Explicit VR LE), the data set of an implicit one.
  const mismatched = Buffer.concat([explicit.subarray(0, start), implicit.subarray(metaEnd(implicit))]);
  const pixelAt = explicit.lastIndexOf(Buffer.concat([tag(0x7fe0, 0x0010), Buffer.from('OW')]));
  return [
    { name: 'meta says Explicit VR, data set is Implicit VR', bytes: mismatched, reason: /parse|VR|transfer syntax|corrupt|invalid|length/i },
    {
      name: 'sequence nested 10,000 deep',
      bytes: Buffer.concat([explicit.subarray(0, start), nestedSequence(10_000), explicit.subarray(start)]),
      reason: /nest|depth|deep/i,
    },
    { name: 'RescaleSlope NaN', bytes: validDicom({ rescaleSlope: Number.NaN, rescaleIntercept: 0 }), reason: /rescale slope/i },
    { name: 'RescaleSlope 0', bytes: validDicom({ rescaleSlope: 0, rescaleIntercept: 0 }), reason: /rescale slope/i },
    { name: 'cut in the middle of its PixelData', bytes: explicit.subarray(0, pixelAt + 12 + 256 * 128 * 2), reason: /truncated|pixel data/i },
    { name: 'Bits Stored above Bits Allocated', bytes: patchUs(explicit, 0x0028, 0x0101, 20), reason: /bits? stored|bit layout/i },
    { name: 'Rows 0', bytes: patchUs(explicit, 0x0028, 0x0010, 0), reason: /rows|columns/i },
    { name: 'Columns 0', bytes: patchUs(explicit, 0x0028, 0x0011, 0), reason: /rows|columns/i },
    {
      name: 'PALETTE COLOR photometric interpretation',
      bytes: validDicom({ photometric: 'PALETTE COLOR' as 'MONOCHROME2', bitsStored: 16 }),
      reason: /photometric/i,
    },
    {
      name: 'Structured Report SOP class',
      bytes: replaceSameLength(explicit, '1.2.840.10008.5.1.4.1.1.1\0', '1.2.840.10008.5.1.4.1.1.88'),
      reason: /SOP class|not an image|structured report/i,
    },
    {
      name: 'Grayscale Softcopy Presentation State SOP class',
      bytes: replaceSameLength(explicit, '1.2.840.10008.5.1.4.1.1.1\0', '1.2.840.10008.5.1.4.1.1.11'),
      reason: /SOP class|not an image|presentation state/i,
    },
    {
      name: 'an element claiming 2 GiB',
      bytes: (() => {
        const out = Buffer.from(explicit.subarray(0, pixelAt + 12 + 1024));
        out.writeUInt32LE(0x7ffffff0, pixelAt + 8);
        return out;
      })(),
      reason: /truncated|length|parse|pixel data/i,
    },
    { name: 'garbage after DICM', bytes: Buffer.concat([explicit.subarray(0, 132), Buffer.alloc(4096, 0xa5)]), reason: /DICOM|parse/i },
  ];
}
