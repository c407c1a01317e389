import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHeatmapSource, encodeHeatmapSource, heatmapKey } from '../../../src/deployment/service/heatmaps.js';
import { validateKey } from '../../../src/core/objects/index.js';

describe('heatmap sources', () => {
  test('encode/decode round-trips the grid and pixels exactly', () => {
    const grid = Float32Array.from([0, 0.25, 0.5, 1, 0.125, 0.75]);
    const pixels = Uint8Array.from({ length: 16 }, (_, i) => i * 16);
    const back = decodeHeatmapSource(encodeHeatmapSource({ grid, h: 2, w: 3, size: 4, pixels }));
    assert.deepEqual(back, { grid, h: 2, w: 3, size: 4, pixels });
    assert.throws(() => decodeHeatmapSource(Buffer.from('nope, not a heatmap')), /corrupt/);
  });

  test('keys are valid object keys, one per (model, version, image)', () => {
    const sha = 'a'.repeat(64);
    const k = heatmapKey('pneumonia', '3', sha);
    assert.equal(validateKey(k), k);
    assert.equal(k, heatmapKey('pneumonia', '3', sha));
    assert.notEqual(k, heatmapKey('pneumonia', '4', sha));
  });
});
