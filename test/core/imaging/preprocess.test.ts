import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { makeDicom } from '../../../src/core/imaging/dicom-writer.js';
import {
  PREPROCESS_VERSION,
  PreprocessSpec,
  parsePreprocessSpec,
  preprocess,
  preprocessingHash,
  toModelInput,
} from '../../../src/core/imaging/preprocess.js';
import { generateChestXray, renderChestXray } from '../../../src/core/imaging/synthetic.js';
import { DICOM_SKIP, dicomFixtures, expectAppError, meanAbsDiff, rawToPng } from './fixtures.js';

describe('PreprocessSpec', () => {
  test('fills defaults', () => {
    assert.deepEqual(parsePreprocessSpec({}), { size: 224, mode: 'letterbox', pad: 0, format: 'png' });
    assert.deepEqual(PreprocessSpec.parse({ size: 128, mode: 'crop' }), { size: 128, mode: 'crop', pad: 0, format: 'png' });
  });

  test('rejects bad values with INVALID_INPUT', async () => {
    for (const bad of [{ size: 0 }, { size: 22.5 }, { pad: 256 }, { pad: -1 }, { mode: 'stretch' }, { format: 'jpeg' }]) {
      await expectAppError(() => parsePreprocessSpec(bad), 'INVALID_INPUT');
    }
  });

  test('preprocessingHash is canonical: defaults and key order do not matter, values do', () => {
    const h = preprocessingHash({});
    assert.match(h, /^[0-9a-f]{64}$/);
    assert.equal(preprocessingHash({ format: 'png', pad: 0, mode: 'letterbox', size: 224 }), h);
    assert.equal(preprocessingHash({ size: 224 }), h);
    assert.notEqual(preprocessingHash({ size: 256 }), h);
    assert.notEqual(preprocessingHash({ mode: 'crop' }), h);
    assert.notEqual(preprocessingHash({ pad: 1 }), h);
    assert.equal(PREPROCESS_VERSION, 1);
  });
});

describe('preprocess', () => {
  test('is deterministic and returns size × size grey pixels with source facts', async () => {
    const jpeg = await generateChestXray({ seed: 21, width: 320, height: 256, format: 'jpeg' });
    const a = await preprocess(jpeg, { size: 96 });
    const b = await preprocess(jpeg, { size: 96 });
    assert.equal(a.pixels.length, 96 * 96);
    assert.equal(a.width, 96);
    assert.equal(a.height, 96);
    assert.deepEqual(a.source, { format: 'jpeg', width: 320, height: 256 });
    assert.deepEqual(a.pixels, b.pixels);
    assert.equal(a.png, undefined);
  });

  test('train/serve identity: the exported PNG decodes to exactly the served pixels', async () => {
    const inputs = [
      await generateChestXray({ seed: 22, size: 300, format: 'jpeg', quality: 70 }),
      await generateChestXray({ seed: 23, width: 256, height: 200 }),
      makeDicom({ ...renderChestXray({ seed: 24, size: 128 }), bitsAllocated: 8, photometric: 'MONOCHROME1' }),
    ];
    for (const input of inputs) {
      for (const mode of ['letterbox', 'crop', 'squash'] as const) {
        const out = await preprocess(input, { size: 64, mode, pad: 9 }, { png: true });
        assert.ok(out.png);
        const meta = await sharp(out.png).metadata();
        assert.equal(meta.channels, 1, 'exported PNG is single-channel grey');
        assert.equal(meta.width, 64);
        const { data } = await sharp(out.png).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
        assert.deepEqual(new Uint8Array(data), out.pixels, `${mode}: PNG round trip differs`);
        // And preprocessing the exported PNG again at the same size changes nothing.
        assert.deepEqual((await preprocess(out.png, { size: 64, mode, pad: 9 })).pixels, out.pixels);
      }
    }
  });

  test('one implementation for every format: a DICOM and a PNG of the same picture give identical pixels', async () => {
    const { width, height, pixels } = renderChestXray({ seed: 25, width: 160, height: 120 });
    const png = await rawToPng(pixels, width, height);
    // Window centre 128 / width 256 (LINEAR) maps stored values to themselves.
    const dcm = makeDicom({ width, height, pixels, bitsAllocated: 8, photometric: 'MONOCHROME2', windowCenter: 128, windowWidth: 256 });
    for (const mode of ['letterbox', 'crop', 'squash'] as const) {
      const fromPng = await preprocess(png, { size: 96, mode });
      const fromDicom = await preprocess(dcm, { size: 96, mode });
      assert.equal(fromDicom.source.format, 'dicom');
      assert.deepEqual(fromDicom.pixels, fromPng.pixels, mode);
    }
  });

  test('letterbox pads with `pad`, crop fills, squash stretches', async () => {
    const wide = await rawToPng(new Uint8Array(300 * 100).fill(200), 300, 100);
    const letterbox = await preprocess(wide, { size: 60, pad: 17 });
    assert.equal(letterbox.pixels[0], 17, 'top-left is padding');
    assert.equal(letterbox.pixels[59 * 60 + 59], 17, 'bottom-right is padding');
    assert.equal(letterbox.pixels[30 * 60 + 30], 200, 'centre is image');
    assert.equal(letterbox.pixels[30 * 60 + 0], 200, 'full width used');
    const crop = await preprocess(wide, { size: 60, mode: 'crop', pad: 17 });
    assert.ok(crop.pixels.every((v) => v === 200));
    const squash = await preprocess(wide, { size: 60, mode: 'squash', pad: 17 });
    assert.ok(squash.pixels.every((v) => v === 200));
  });

  test('crop keeps the centre: a wide image with dark sides loses them', async () => {
    const px = new Uint8Array(300 * 100);
    for (let y = 0; y < 100; y++) for (let x = 0; x < 300; x++) px[y * 300 + x] = x < 100 || x >= 200 ? 0 : 255;
    const out = await preprocess(await rawToPng(px, 300, 100), { size: 50, mode: 'crop' });
    const mean = out.pixels.reduce((s, v) => s + v, 0) / out.pixels.length;
    assert.ok(mean > 250, `mean ${mean}`);
  });

  test('colour input becomes luminance', async () => {
    const rgb = new Uint8Array(64 * 64 * 3);
    for (let i = 0; i < 64 * 64; i++) rgb.set([255, 0, 0], i * 3);
    const red = await sharp(rgb, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
    const out = await preprocess(red, { size: 32 });
    const v = out.pixels[0]!;
    assert.ok(out.pixels.every((p) => p === v));
    assert.ok(v > 40 && v < 140, `luminance of pure red was ${v}`);
  });

  test('decodes the shared DICOM fixture to a plausible 224 input', async (t) => {
    const fx = dicomFixtures();
    if (!fx) return t.skip(DICOM_SKIP);
    const out = await preprocess(fx.mono2);
    assert.equal(out.pixels.length, 224 * 224);
    assert.deepEqual(out.source, { format: 'dicom', width: 1024, height: 1024 });
    // The relabelled MONOCHROME1 copy renders as the negative (resampling rounds by a level or two).
    const inv = await preprocess(fx.mono1);
    assert.ok(meanAbsDiff(inv.pixels, out.pixels.map((v) => 255 - v)) < 1.5);
    assert.ok(meanAbsDiff(inv.pixels, out.pixels) > 50);
  });

  test('errors carry the right codes', async () => {
    const jpeg = await generateChestXray({ seed: 26, size: 128, format: 'jpeg' });
    await expectAppError(preprocess(jpeg.subarray(0, jpeg.length >> 1)), 'UNPROCESSABLE');
    await expectAppError(preprocess(Buffer.alloc(0)), 'INVALID_INPUT');
    await expectAppError(preprocess(Buffer.from('GIF89a....')), 'UNSUPPORTED_MEDIA_TYPE');
    await expectAppError(preprocess(await rawToPng(new Uint8Array(100), 10, 10)), 'UNPROCESSABLE');
    await expectAppError(preprocess(jpeg, { size: 7 }), 'INVALID_INPUT');
    await expectAppError(preprocess(jpeg, {}, { decode: { maxPixels: 1000 } }), 'PAYLOAD_TOO_LARGE');
  });
});

describe('toModelInput', () => {
  test('scales to [0, 1] in a flat [1, 1, S, S] Float32Array', () => {
    const px = new Uint8Array([0, 51, 255, 128]);
    const t = toModelInput(px, 2);
    assert.ok(t instanceof Float32Array);
    assert.equal(t.length, 4);
    assert.deepEqual(Array.from(t), [0, Math.fround(0.2), 1, Math.fround(128 / 255)]);
  });

  test('rejects a size mismatch', async () => {
    await expectAppError(() => toModelInput(new Uint8Array(10), 3), 'INVALID_INPUT');
  });
});
