import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { findShifts, IMAGE_SHIFTS } from '../../../src/core/imaging/shifts.js';
import { sniffFormat } from '../../../src/core/imaging/decode.js';
import { renderChestXray } from '../../../src/core/imaging/synthetic.js';
import { decodeGrey, expectAppError, rawToPng } from './fixtures.js';

async function xray(): Promise<Buffer> {
  const img = renderChestXray({ size: 96, seed: 3 });
  return rawToPng(img.pixels, img.width, img.height);
}

const mean = (px: Uint8Array) => px.reduce((a, v) => a + v, 0) / px.length;

describe('image shifts (robustness evaluation)', () => {
  test('every shift yields a decodable image, deterministically', async () => {
    const src = await xray();
    for (const shift of IMAGE_SHIFTS) {
      const a = await shift.apply(src);
      const b = await shift.apply(src);
      assert.ok(a.equals(b), `${shift.name} is not deterministic`);
      assert.equal(sniffFormat(a), shift.name.startsWith('JPEG') ? 'jpeg' : 'png', shift.name);
      const meta = await sharp(a).metadata();
      assert.ok((meta.width ?? 0) >= 8 && (meta.height ?? 0) >= 8, shift.name);
    }
  });

  test('the shifts do what their names say', async () => {
    const src = await xray();
    const base = await decodeGrey(src);
    const [under, over, flat, , , , , , narrow, wide, low, crop] = await Promise.all(
      ['exposure -20%', 'exposure +20%', 'contrast x0.7', 'contrast x1.3', 'gamma 0.7', 'gamma 1.4', 'blur sigma 1.5px', 'noise sd 0.03', 'aspect 0.85', 'aspect 1.15', 'low resolution 50%', 'crop 90%']
        .map(async (name) => decodeGrey(await findShifts([name])[0]!.apply(src))),
    );
    assert.ok(Math.abs(mean(under!.data) - 0.8 * mean(base.data)) < 1, 'exposure -20%');
    assert.ok(mean(over!.data) > mean(base.data) * 1.1, 'exposure +20%');
    const sd = (px: Uint8Array) => {
      const m = mean(px);
      return Math.sqrt(px.reduce((a, v) => a + (v - m) ** 2, 0) / px.length);
    };
    assert.ok(Math.abs(sd(flat!.data) - 0.7 * sd(base.data)) < 1.5, 'contrast x0.7');
    assert.deepEqual([narrow!.width, narrow!.height], [Math.round(96 * 0.85), 96]);
    assert.deepEqual([wide!.width, wide!.height], [Math.round(96 * 1.15), 96]);
    assert.deepEqual([low!.width, low!.height], [48, 48]);
    assert.deepEqual([crop!.width, crop!.height], [86, 86]);
  });

  test('unknown names are refused with the list of known ones; no names = all', async () => {
    assert.equal(findShifts([]).length, IMAGE_SHIFTS.length);
    const err = await expectAppError(() => findShifts(['gamma 0.7', 'sepia']), 'INVALID_INPUT');
    assert.match(err.message, /'sepia'/);
    assert.match(err.message, /exposure -20%/);
  });

  test('a corrupt file fails with the decoder\'s typed error', async () => {
    await expectAppError(IMAGE_SHIFTS[0]!.apply(Buffer.from('not an image')), 'UNSUPPORTED_MEDIA_TYPE');
  });
});
