import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readDicomDict, writeDicomDict } from '../../../src/core/imaging/dcmjs-io.js';
import { decodeDicom, readDicomHeader } from '../../../src/core/imaging/dicom.js';
import { encodeRleFrame, makeDicom } from '../../../src/core/imaging/dicom-writer.js';
import { decodeRleFrame } from '../../../src/core/imaging/dicom.js';
import { DICOM_SKIP, dicomFixtures, expectAppError, meanAbsDiff } from './fixtures.js';

const W = 48;
const H = 32;

function ramp16(n: number, max: number): Uint16Array {
  return new Uint16Array(n).map((_, i) => Math.round((i / (n - 1)) * max));
}

/** Rewrites a file's transfer syntax UID in the meta group (pixel data left as is). */
function withTransferSyntax(buf: Buffer, uid: string): Buffer {
  const file = readDicomDict(buf);
  file.meta['00020010'] = { vr: 'UI', Value: [uid] };
  return writeDicomDict(file.meta, file.dict);
}

describe('decodeDicom on the shared fixtures', () => {
  test('decodes the JPEG Baseline MONOCHROME2 radiograph', async (t) => {
    const fx = dicomFixtures();
    if (!fx) return t.skip(DICOM_SKIP);
    const img = await decodeDicom(fx.mono2);
    assert.equal(img.width, 1024);
    assert.equal(img.height, 1024);
    assert.equal(img.pixels.length, 1024 * 1024);
    assert.equal(img.transferSyntax, '1.2.840.10008.1.2.4.50');
    assert.equal(img.photometric, 'MONOCHROME2');
    assert.equal(img.modality, 'CR');
    assert.equal(img.bitsStored, 8);
    assert.equal(img.meta.voiSource, 'minmax');
    assert.equal(img.meta.inverted, false);
    assert.deepEqual(img.meta.pixelSpacing, [0.168, 0.168]);
    // A chest film: dark lungs, bright mediastinum; not blank.
    const mean = img.pixels.reduce((s, v) => s + v, 0) / img.pixels.length;
    assert.ok(mean > 60 && mean < 200, `mean ${mean}`);
  });

  test('the MONOCHROME1 relabel is rendered as the negative of the MONOCHROME2 original', async (t) => {
    // SOURCE.md: same image relabelled MONOCHROME1 ("minimum value displays white"), and
    // "a correct reader must invert it". The two files differ only in that label: the JPEG
    // (stored values) is byte-identical. Rendering stored values for display therefore gives
    // exact negatives — the same picture only if one file were inverted back.
    const fx = dicomFixtures();
    if (!fx) return t.skip(DICOM_SKIP);
    let differing = 0;
    for (let i = 0; i < fx.mono2.length; i++) if (fx.mono2[i] !== fx.mono1[i]) differing++;
    assert.equal(fx.mono1.length, fx.mono2.length);
    assert.equal(differing, 1, 'only the 2 → 1 of MONOCHROME2 differs');

    const mono2 = await decodeDicom(fx.mono2);
    const mono1 = await decodeDicom(fx.mono1);
    assert.equal(mono1.photometric, 'MONOCHROME1');
    assert.equal(mono1.meta.inverted, true);
    const inverted = mono2.pixels.map((v) => 255 - v);
    assert.equal(meanAbsDiff(mono1.pixels, inverted), 0);
    assert.ok(meanAbsDiff(mono1.pixels, mono2.pixels) > 50, 'not rendered identically: the inversion happened');
  });
});

describe('decodeDicom on generated files', () => {
  test('16-bit with rescale slope/intercept and a LINEAR window', async () => {
    // Modality value m = 2s - 1000; window c = 1000, w = 2001 → PS3.3 C.11.2.1.2.1 gives
    // m ≤ 0 → 0, m = 500 → 64, m = 1000 → 128, m ≥ 2000 → 255.
    const stored = [250, 500, 750, 1000, 1500, 1750];
    const expected = [0, 0, 64, 128, 255, 255];
    const pixels = new Uint16Array(W * H);
    stored.forEach((s, i) => (pixels[i] = s));
    const dcm = makeDicom({
      width: W, height: H, pixels, bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME2',
      rescaleSlope: 2, rescaleIntercept: -1000, windowCenter: 1000, windowWidth: 2001,
    });
    const img = await decodeDicom(dcm);
    assert.deepEqual(Array.from(img.pixels.subarray(0, stored.length)), expected);
    assert.equal(img.pixels[W * H - 1], 0); // stored 0 → m = -1000 → below the window
    assert.equal(img.meta.voiSource, 'window');
    assert.deepEqual(img.meta.window, { center: 1000, width: 2001, fn: 'LINEAR' });
    assert.equal(img.meta.rescaleSlope, 2);
    assert.equal(img.meta.rescaleIntercept, -1000);
    assert.equal(img.bitsStored, 12);
  });

  test('without a window, the data range is stretched to 0..255', async () => {
    const pixels = ramp16(W * H, 3000).map((v) => v + 500);
    const img = await decodeDicom(makeDicom({ width: W, height: H, pixels, bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME2' }));
    assert.equal(img.meta.voiSource, 'minmax');
    assert.equal(img.pixels[0], 0);
    assert.equal(img.pixels[W * H - 1], 255);
    assert.deepEqual(img.meta.storedRange, [500, 3500]);
    const mid = pixels.findIndex((v) => v >= 2000);
    assert.ok(Math.abs(img.pixels[mid]! - 128) <= 1);
  });

  test("voi: 'minmax' ignores the file's window", async () => {
    const pixels = ramp16(W * H, 4095);
    const dcm = makeDicom({ width: W, height: H, pixels, bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME2', windowCenter: 100, windowWidth: 10 });
    const img = await decodeDicom(dcm, { voi: 'minmax' });
    assert.equal(img.meta.voiSource, 'minmax');
    assert.equal(img.pixels[W * H - 1], 255);
    assert.equal(img.pixels[0], 0);
  });

  test('applies a VOI LUT Sequence when there is no window', async () => {
    const pixels = new Uint8Array(W * H).map((_, i) => i % 4);
    const dcm = makeDicom({
      width: W, height: H, pixels, bitsAllocated: 8, photometric: 'MONOCHROME2',
      attributes: { VOILUTSequence: [{ _vrMap: { LUTDescriptor: 'US', LUTData: 'US' }, LUTDescriptor: [4, 0, 8], LUTData: [0, 51, 102, 255] }] },
    });
    const img = await decodeDicom(dcm);
    assert.equal(img.meta.voiSource, 'lut');
    assert.deepEqual(Array.from(img.pixels.subarray(0, 8)), [0, 51, 102, 255, 0, 51, 102, 255]);
  });

  test('MONOCHROME1 is inverted: same stored values, labels 1 and 2, sum to 255', async () => {
    const pixels = ramp16(W * H, 1023);
    const as2 = await decodeDicom(makeDicom({ width: W, height: H, pixels, bitsAllocated: 16, bitsStored: 10, photometric: 'MONOCHROME2' }));
    const as1 = await decodeDicom(makeDicom({ width: W, height: H, pixels, bitsAllocated: 16, bitsStored: 10, photometric: 'MONOCHROME1' }));
    assert.equal(as1.pixels[0], 255); // minimum value displays white
    assert.equal(as1.pixels[W * H - 1], 0);
    for (let i = 0; i < W * H; i++) assert.equal(as1.pixels[i]! + as2.pixels[i]!, 255);
  });

  test('signed 16-bit values (Pixel Representation 1)', async () => {
    const pixels = new Int16Array(W * H).map((_, i) => i - 1000);
    const img = await decodeDicom(makeDicom({ width: W, height: H, pixels, bitsAllocated: 16, photometric: 'MONOCHROME2' }));
    assert.equal(img.meta.pixelRepresentation, 1);
    assert.deepEqual(img.meta.storedRange, [-1000, W * H - 1001]);
    assert.equal(img.pixels[0], 0);
    assert.equal(img.pixels[W * H - 1], 255);
  });

  test('bits above Bits Stored are masked off', async () => {
    const clean = ramp16(W * H, 4095);
    const dirty = clean.map((v) => v | 0xf000);
    const a = await decodeDicom(makeDicom({ width: W, height: H, pixels: clean, bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME2' }));
    const b = await decodeDicom(makeDicom({ width: W, height: H, pixels: dirty, bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME2' }));
    assert.deepEqual(b.pixels, a.pixels);
  });

  test('implicit VR, explicit VR and RLE Lossless decode to the same pixels', async () => {
    const pixels = ramp16(W * H, 4095).map((v, i) => (i % 7 === 0 ? 0 : v));
    const base = { width: W, height: H, pixels, bitsAllocated: 16 as const, bitsStored: 12, photometric: 'MONOCHROME2' as const };
    const explicit = await decodeDicom(makeDicom(base));
    const implicit = await decodeDicom(makeDicom({ ...base, transferSyntax: 'implicit' }));
    const rle = await decodeDicom(makeDicom({ ...base, transferSyntax: 'rle' }));
    assert.equal(implicit.transferSyntax, '1.2.840.10008.1.2');
    assert.equal(rle.transferSyntax, '1.2.840.10008.1.2.5');
    assert.deepEqual(implicit.pixels, explicit.pixels);
    assert.deepEqual(rle.pixels, explicit.pixels);
  });

  test('RLE frames round-trip, including long runs and literals', () => {
    const bytes = new Uint8Array(300 * 2 * 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i < 700 ? 7 : (i * 31) % 256;
    const frame = encodeRleFrame(bytes, 300, 3, 16);
    assert.deepEqual(decodeRleFrame(frame, 3, 300, 1, 16), bytes);
    // Hand-made segment: literal "1 2 3", then 5 × 9 (PS3.5 G.3.1 PackBits).
    const header = new Uint8Array(64);
    new DataView(header.buffer).setUint32(0, 1, true);
    new DataView(header.buffer).setUint32(4, 64, true);
    const frame2 = new Uint8Array([...header, 2, 1, 2, 3, 256 - 4, 9]);
    assert.deepEqual(Array.from(decodeRleFrame(frame2, 2, 4, 1, 8)), [1, 2, 3, 9, 9, 9, 9, 9]);
  });

  test('a raw dataset without preamble still decodes', async () => {
    const pixels = new Uint8Array(W * H).map((_, i) => i % 256);
    const part10 = makeDicom({ width: W, height: H, pixels, bitsAllocated: 8, photometric: 'MONOCHROME2', transferSyntax: 'implicit' });
    const metaLength = part10.readUInt32LE(132 + 8);
    const raw = part10.subarray(132 + 12 + metaLength);
    const img = await decodeDicom(raw);
    assert.deepEqual(img.pixels, (await decodeDicom(part10)).pixels);
  });

  test('no pixel data is UNPROCESSABLE', async () => {
    const dcm = makeDicom({ width: W, height: H, pixels: new Uint8Array(W * H), bitsAllocated: 8, photometric: 'MONOCHROME2', withPixelData: false });
    const err = await expectAppError(decodeDicom(dcm), 'UNPROCESSABLE');
    assert.match(err.message, /Pixel Data/);
  });

  test('garbage and truncated files are UNPROCESSABLE; empty is INVALID_INPUT', async () => {
    const garbage = Buffer.alloc(600, 0x5a);
    garbage.write('DICM', 128, 'latin1');
    await expectAppError(decodeDicom(garbage), 'UNPROCESSABLE');
    await expectAppError(decodeDicom(Buffer.from('plain text, not DICOM, definitely not DICOM')), 'UNPROCESSABLE');
    const good = makeDicom({ width: W, height: H, pixels: ramp16(W * H, 4095), bitsAllocated: 16, photometric: 'MONOCHROME2' });
    await expectAppError(decodeDicom(good.subarray(0, good.length - 200)), 'UNPROCESSABLE');
    await expectAppError(decodeDicom(Buffer.alloc(0)), 'INVALID_INPUT');
  });

  test('unsupported transfer syntaxes are UNSUPPORTED_MEDIA_TYPE, naming the syntax', async () => {
    const good = makeDicom({ width: W, height: H, pixels: new Uint8Array(W * H), bitsAllocated: 8, photometric: 'MONOCHROME2' });
    for (const [uid, name] of [
      ['1.2.840.10008.1.2.4.94', 'JPIP Referenced'],
      ['1.2.840.10008.1.2.4.100', 'MPEG2 Main Profile'],
      ['1.2.3.4.5', '1.2.3.4.5'],
    ] as const) {
      const err = await expectAppError(decodeDicom(withTransferSyntax(good, uid)), 'UNSUPPORTED_MEDIA_TYPE');
      assert.ok(err.message.includes(name), err.message);
      assert.ok(err.message.includes(uid), err.message);
    }
  });

  test('a corrupt JPEG fragment is UNPROCESSABLE', async (t) => {
    const fx = dicomFixtures();
    if (!fx) return t.skip(DICOM_SKIP);
    const broken = Buffer.from(fx.mono2);
    broken.fill(0, broken.length - 60000, broken.length - 1000);
    await expectAppError(decodeDicom(broken), 'UNPROCESSABLE');
  });

  test('readDicomHeader reads the image attributes without decoding', () => {
    const dcm = makeDicom({ width: W, height: H, pixels: new Uint16Array(W * H), bitsAllocated: 16, bitsStored: 14, photometric: 'MONOCHROME1', modality: 'DX' });
    const h = readDicomHeader(dcm);
    assert.equal(h.rows, H);
    assert.equal(h.columns, W);
    assert.equal(h.bitsStored, 14);
    assert.equal(h.highBit, 13);
    assert.equal(h.photometric, 'MONOCHROME1');
    assert.equal(h.modality, 'DX');
    assert.equal(h.transferSyntax, '1.2.840.10008.1.2.1');
  });

  test('rejects sizes above maxPixels before decoding', async () => {
    const dcm = makeDicom({ width: W, height: H, pixels: new Uint8Array(W * H), bitsAllocated: 8, photometric: 'MONOCHROME2' });
    await expectAppError(decodeDicom(dcm, { maxPixels: W * H - 1 }), 'PAYLOAD_TOO_LARGE');
  });
});
