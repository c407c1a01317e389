import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { imageStats } from '../../../src/core/imaging/stats.js';
import { renderChestXray } from '../../../src/core/imaging/synthetic.js';
import { expectAppError } from './fixtures.js';

describe('imageStats', () => {
  test('a constant image has no spread, no entropy and no edges', () => {
    const s = imageStats(new Uint8Array(32 * 32).fill(77), 32, 32);
    assert.deepEqual(s, {
      mean: 77, std: 0, min: 77, max: 77, p01: 77, p99: 77, entropy: 0,
      clipLowFrac: 0, clipHighFrac: 0, laplacianVariance: 0, edgeDensity: 0,
    });
  });

  test('half black, half white', () => {
    const px = new Uint8Array(20 * 10);
    px.fill(255, 100);
    const s = imageStats(px, 20, 10);
    assert.equal(s.mean, 127.5);
    assert.equal(s.std, 127.5);
    assert.equal(s.entropy, 1);
    assert.equal(s.clipLowFrac, 0.5);
    assert.equal(s.clipHighFrac, 0.5);
    assert.equal(s.p01, 0);
    assert.equal(s.p99, 255);
    assert.equal(s.min, 0);
    assert.equal(s.max, 255);
    // Only the two rows either side of the boundary have gradients or Laplacian response.
    assert.ok(s.edgeDensity > 0.2 && s.edgeDensity < 0.3, String(s.edgeDensity));
  });

  test('every grey level once: 8 bits of entropy, exact percentiles', () => {
    const px = Uint8Array.from({ length: 256 }, (_, i) => i);
    const s = imageStats(px, 16, 16);
    assert.equal(s.entropy, 8);
    assert.equal(s.p01, 2); // rank ceil(2.56) = 3 → grey level 2
    assert.equal(s.p99, 253);
    assert.equal(s.clipLowFrac, 3 / 256);
    assert.equal(s.clipHighFrac, 3 / 256);
  });

  test('sharpness: a checkerboard scores far above its blurred version', () => {
    const n = 32;
    const sharp = new Uint8Array(n * n);
    const soft = new Uint8Array(n * n);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        sharp[y * n + x] = (x + y) % 2 ? 200 : 50;
        soft[y * n + x] = 125 + Math.round(10 * Math.sin(x / 5));
      }
    }
    assert.ok(imageStats(sharp, n, n).laplacianVariance > 100 * imageStats(soft, n, n).laplacianVariance);
  });

  test('is deterministic on a synthetic radiograph and lands in sane ranges', () => {
    const { width, height, pixels } = renderChestXray({ seed: 31, size: 128 });
    const a = imageStats(pixels, width, height);
    assert.deepEqual(imageStats(pixels, width, height), a);
    assert.ok(a.std > 20);
    assert.ok(a.entropy > 5 && a.entropy <= 8);
    assert.ok(a.p01 <= a.mean && a.mean <= a.p99);
  });

  test('rejects mismatched sizes', async () => {
    await expectAppError(() => imageStats(new Uint8Array(10), 3, 3), 'INVALID_INPUT');
    await expectAppError(() => imageStats(new Uint8Array(0), 0, 0), 'INVALID_INPUT');
  });
});
