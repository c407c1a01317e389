import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { makeDicom } from '../../../src/core/imaging/dicom-writer.js';
import { hammingDistance, perceptualHash, perceptualHashOfPixels, phashFrom32x32 } from '../../../src/core/imaging/phash.js';
import { generateChestXray, renderChestXray } from '../../../src/core/imaging/synthetic.js';
import { expectAppError, gradient, rawToPng } from './fixtures.js';

describe('perceptualHash', () => {
  test('is 16 hex characters and deterministic', async () => {
    const png = await generateChestXray({ seed: 41, size: 128 });
    const h = await perceptualHash(png);
    assert.match(h, /^[0-9a-f]{16}$/);
    assert.equal(await perceptualHash(png), h);
  });

  test('survives re-encoding at other JPEG qualities and slight resizing (distance ≤ 6)', async () => {
    const png = await generateChestXray({ seed: 42, size: 256 });
    const h = await perceptualHash(png);
    const variants = [
      await sharp(png).jpeg({ quality: 95 }).toBuffer(),
      await sharp(png).jpeg({ quality: 50 }).toBuffer(),
      await sharp(png).resize(230, 230).png().toBuffer(),
      await sharp(png).resize(300, 300).jpeg({ quality: 80 }).toBuffer(),
    ];
    for (const v of variants) {
      const d = hammingDistance(h, await perceptualHash(v));
      assert.ok(d <= 6, `distance ${d}`);
    }
  });

  test('the same picture as DICOM and as PNG hashes alike', async () => {
    const { width, height, pixels } = renderChestXray({ seed: 43, size: 128 });
    const fromPng = await perceptualHash(await rawToPng(pixels, width, height));
    const fromDicom = await perceptualHash(makeDicom({ width, height, pixels, bitsAllocated: 8, photometric: 'MONOCHROME2', windowCenter: 128, windowWidth: 256 }));
    assert.equal(fromDicom, fromPng);
    assert.equal(await perceptualHashOfPixels(pixels, width, height), fromPng);
  });

  test('different images are far apart', async () => {
    const h = await perceptualHash(await generateChestXray({ seed: 44, size: 128 }));
    for (const seed of [45, 46, 47]) {
      const d = hammingDistance(h, await perceptualHash(await generateChestXray({ seed, size: 128 })));
      assert.ok(d >= 8, `another synthetic patient at distance ${d}`);
    }
    const ramp = await perceptualHash(await rawToPng(gradient(128, 128), 128, 128));
    assert.ok(hammingDistance(h, ramp) >= 16);
  });

  test('phashFrom32x32 needs exactly 1024 pixels', async () => {
    await expectAppError(() => phashFrom32x32(new Uint8Array(1000)), 'INVALID_INPUT');
  });
});

describe('hammingDistance', () => {
  test('counts differing bits', () => {
    assert.equal(hammingDistance('0000000000000000', '0000000000000000'), 0);
    assert.equal(hammingDistance('0000000000000000', 'ffffffffffffffff'), 64);
    assert.equal(hammingDistance('8000000000000001', '0000000000000000'), 2);
    assert.equal(hammingDistance('ABCDEF0123456789', 'abcdef0123456789'), 0);
  });

  test('rejects malformed hashes', async () => {
    await expectAppError(() => hammingDistance('abc', '0000000000000000'), 'INVALID_INPUT');
    await expectAppError(() => hammingDistance('000000000000000g', '0000000000000000'), 'INVALID_INPUT');
  });
});
