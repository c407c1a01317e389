import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { checkDimensions, probeImage, sniffFormat } from '../../../src/core/imaging/decode.js';
import { makeDicom } from '../../../src/core/imaging/dicom-writer.js';
import { generateChestXray } from '../../../src/core/imaging/synthetic.js';
import { DICOM_SKIP, dicomFixtures, expectAppError, gradient, rawToPng } from './fixtures.js';

/** Strips preamble, `DICM` and the meta group: a bare dataset as some old systems write. */
function stripMetaGroup(part10: Buffer): Buffer {
  const metaLength = part10.readUInt32LE(132 + 8);
  return part10.subarray(132 + 12 + metaLength);
}

describe('sniffFormat', () => {
  test('recognises PNG, JPEG and DICOM by magic bytes', async () => {
    const png = await generateChestXray({ seed: 1, size: 64 });
    const jpeg = await generateChestXray({ seed: 1, size: 64, format: 'jpeg' });
    const dcm = makeDicom({ width: 8, height: 8, pixels: new Uint8Array(64), bitsAllocated: 8, photometric: 'MONOCHROME2' });
    assert.equal(sniffFormat(png), 'png');
    assert.equal(sniffFormat(jpeg), 'jpeg');
    assert.equal(sniffFormat(dcm), 'dicom');
  });

  test('recognises DICOM without preamble (meta group first, explicit and implicit datasets)', () => {
    const explicit = makeDicom({ width: 8, height: 8, pixels: new Uint8Array(64), bitsAllocated: 8, photometric: 'MONOCHROME2' });
    const implicit = makeDicom({ width: 8, height: 8, pixels: new Uint8Array(64), bitsAllocated: 8, photometric: 'MONOCHROME2', transferSyntax: 'implicit' });
    assert.equal(sniffFormat(explicit.subarray(132)), 'dicom');
    assert.equal(sniffFormat(stripMetaGroup(explicit)), 'dicom');
    assert.equal(sniffFormat(stripMetaGroup(implicit)), 'dicom');
  });

  test('returns null for empty, text and other formats', async () => {
    assert.equal(sniffFormat(Buffer.alloc(0)), null);
    assert.equal(sniffFormat(Buffer.from('hello, this is not an image at all; just text')), null);
    const webp = await sharp(gradient(16, 16), { raw: { width: 16, height: 16, channels: 1 } }).webp().toBuffer();
    assert.equal(sniffFormat(webp), null);
    assert.equal(sniffFormat(Buffer.from([0x89, 0x50, 0x4e])), null);
  });
});

describe('probeImage', () => {
  test('describes a greyscale PNG', async () => {
    const info = await probeImage(await generateChestXray({ seed: 2, width: 300, height: 200 }));
    assert.deepEqual(info, { format: 'png', width: 300, height: 200, bitDepth: 8, channels: 1, isGreyscaleContent: true });
  });

  test('PNG bytes are PNG whatever the file would be called', async () => {
    const pngNamedJpg = await generateChestXray({ seed: 3, size: 64 });
    assert.equal((await probeImage(pngNamedJpg)).format, 'png');
  });

  test('an RGB JPEG of grey content is greyscale content; a colourful one is not', async () => {
    const grey = await sharp(await generateChestXray({ seed: 4, size: 96 })).toColourspace('srgb').jpeg().toBuffer();
    const greyInfo = await probeImage(grey);
    assert.equal(greyInfo.format, 'jpeg');
    assert.equal(greyInfo.channels, 3);
    assert.equal(greyInfo.isGreyscaleContent, true);

    const rgb = new Uint8Array(96 * 96 * 3);
    for (let i = 0; i < 96 * 96; i++) rgb.set([i % 256, 40, 200], i * 3);
    const colour = await sharp(rgb, { raw: { width: 96, height: 96, channels: 3 } }).jpeg().toBuffer();
    assert.equal((await probeImage(colour)).isGreyscaleContent, false);
  });

  test('reports 16-bit PNG depth', async () => {
    const words = new Uint16Array(64 * 64).map((_, i) => i * 16);
    const png16 = await sharp(Buffer.from(words.buffer), { raw: { width: 64, height: 64, channels: 1 } })
      .toColourspace('grey16')
      .png()
      .toBuffer();
    const info = await probeImage(png16);
    assert.equal(info.bitDepth, 16);
    assert.equal(info.channels, 1);
  });

  test('describes DICOM with its photometric interpretation and bits stored', async () => {
    const dcm = makeDicom({ width: 40, height: 36, pixels: new Uint16Array(40 * 36).map((_, i) => i), bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME1' });
    assert.deepEqual(await probeImage(dcm), {
      format: 'dicom', width: 40, height: 36, bitDepth: 12, channels: 1, photometric: 'MONOCHROME1', isGreyscaleContent: true,
    });
  });

  test('decodes the shared DICOM fixture', async (t) => {
    const fx = dicomFixtures();
    if (!fx) return t.skip(DICOM_SKIP);
    const info = await probeImage(fx.mono2);
    assert.equal(info.width, 1024);
    assert.equal(info.height, 1024);
    assert.equal(info.photometric, 'MONOCHROME2');
  });

  test('empty input is INVALID_INPUT', async () => {
    await expectAppError(probeImage(Buffer.alloc(0)), 'INVALID_INPUT');
  });

  test('text and unknown formats are UNSUPPORTED_MEDIA_TYPE', async () => {
    await expectAppError(probeImage(Buffer.from('{"not": "an image"}\n'.repeat(20))), 'UNSUPPORTED_MEDIA_TYPE');
    const webp = await sharp(gradient(64, 64), { raw: { width: 64, height: 64, channels: 1 } }).webp().toBuffer();
    await expectAppError(probeImage(webp), 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('truncated JPEG and PNG are UNPROCESSABLE', async () => {
    const jpeg = await generateChestXray({ seed: 5, size: 256, format: 'jpeg' });
    const png = await generateChestXray({ seed: 5, size: 256 });
    await expectAppError(probeImage(jpeg.subarray(0, Math.floor(jpeg.length * 0.6))), 'UNPROCESSABLE');
    await expectAppError(probeImage(png.subarray(0, Math.floor(png.length * 0.6))), 'UNPROCESSABLE');
    await expectAppError(probeImage(jpeg.subarray(0, 40)), 'UNPROCESSABLE');
  });

  test('corrupt JPEG entropy data is UNPROCESSABLE', async () => {
    const jpeg = Buffer.from(await generateChestXray({ seed: 6, size: 128, format: 'jpeg' }));
    jpeg.fill(0xff, Math.floor(jpeg.length / 2), Math.floor(jpeg.length / 2) + 64);
    await expectAppError(probeImage(jpeg), 'UNPROCESSABLE');
    // The lenient level accepts what libjpeg only warns about.
    assert.equal((await probeImage(jpeg, { failOn: 'error' })).format, 'jpeg');
  });

  test('a 1x1 image is too small (UNPROCESSABLE); minSide is configurable', async () => {
    const tiny = await rawToPng(new Uint8Array([128]), 1, 1);
    const err = await expectAppError(probeImage(tiny), 'UNPROCESSABLE');
    assert.match(err.message, /1x1/);
    const small = await rawToPng(gradient(40, 40), 40, 40);
    await expectAppError(probeImage(small, { minSide: 64 }), 'UNPROCESSABLE');
    assert.equal((await probeImage(small)).width, 40);
  });

  test('too many pixels is PAYLOAD_TOO_LARGE, for rasters and DICOM', async () => {
    const png = await generateChestXray({ seed: 7, size: 128 });
    await expectAppError(probeImage(png, { maxPixels: 128 * 127 }), 'PAYLOAD_TOO_LARGE');
    const dcm = makeDicom({ width: 64, height: 64, pixels: new Uint8Array(64 * 64), bitsAllocated: 8, photometric: 'MONOCHROME2' });
    await expectAppError(probeImage(dcm, { maxPixels: 1000 }), 'PAYLOAD_TOO_LARGE');
  });

  test('checkDimensions accepts the limits themselves', () => {
    checkDimensions(32, 32);
    checkDimensions(100, 100, { maxPixels: 10_000 });
    assert.throws(() => checkDimensions(31, 500), /smaller/);
  });
});
