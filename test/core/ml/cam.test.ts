import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import {
  classActivationMap,
  globalAveragePool,
  heatmapColormap,
  normalizeMap,
  occlusionSensitivity,
  renderHeatmapPng,
  contentRegion,
  mapAgreement,
  scaleMap,
  upsampleBilinear,
} from '../../../src/core/ml/cam.js';
import { isAppError } from '../../../src/core/errors.js';

const argmax = (a: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
};

/** c = 3, 4×4: channel 0 fires at (1, 2), channel 1 at (3, 0), channel 2 everywhere weakly. */
function featureMap(): Float32Array {
  const f = new Float32Array(3 * 16);
  f[0 * 16 + 1 * 4 + 2] = 2;
  f[0 * 16 + 1 * 4 + 3] = 1;
  f[1 * 16 + 3 * 4 + 0] = 5;
  for (let p = 0; p < 16; p++) f[2 * 16 + p] = 0.1;
  return f;
}

describe('classActivationMap', () => {
  test('the hot spot lands where the weighted channel is active', () => {
    const cam0 = classActivationMap(featureMap(), 3, 4, 4, [1, 0, 0]);
    assert.equal(argmax(cam0), 1 * 4 + 2);
    assert.equal(cam0[1 * 4 + 2], 1);
    assert.equal(cam0[1 * 4 + 3], 0.5);
    assert.equal(cam0[0], 0);
    const cam1 = classActivationMap(featureMap(), 3, 4, 4, [0.2, 1, 0]);
    assert.equal(argmax(cam1), 3 * 4 + 0);
    for (const v of cam1) assert.ok(v >= 0 && v <= 1);
  });

  test('negative evidence is clipped and an all-zero map stays zero', () => {
    const cam = classActivationMap(featureMap(), 3, 4, 4, [-1, 0, 0]);
    assert.deepEqual([...cam], new Array<number>(16).fill(0));
    assert.deepEqual([...classActivationMap(new Float32Array(48), 3, 4, 4, [1, 1, 1])], new Array<number>(16).fill(0));
    assert.throws(() => classActivationMap(featureMap(), 3, 4, 4, [1, 0]), isAppError);
    assert.throws(() => classActivationMap(featureMap(), 3, 4, 5, [1, 0, 0]), isAppError);
  });

  test('globalAveragePool averages each channel', () => {
    const pooled = globalAveragePool(featureMap(), 3, 4, 4);
    assert.deepEqual([...pooled].map((v) => Math.round(v * 1e6) / 1e6), [3 / 16, 5 / 16, 0.1]);
  });
});

describe('upsampleBilinear', () => {
  test('matches half-pixel-centre interpolation (PyTorch align_corners=False)', () => {
    const out = upsampleBilinear([0, 1, 2, 3], 2, 2, 4, 4);
    assert.deepEqual([...out], [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  });

  test('output shape, constant maps and non-square sizes', () => {
    const out = upsampleBilinear(new Float32Array(7 * 5).fill(0.3), 7, 5, 224, 160);
    assert.equal(out.length, 224 * 160);
    for (const v of out) assert.ok(Math.abs(v - 0.3) < 1e-6);
    assert.equal(upsampleBilinear([1, 2, 3, 4, 5, 6], 2, 3, 2, 3).join(), '1,2,3,4,5,6');
    assert.throws(() => upsampleBilinear([1, 2, 3], 2, 2, 4, 4), isAppError);
  });
});

describe('colour map and PNG rendering', () => {
  test('cold is blue, hot is red', () => {
    const [r0, , b0] = heatmapColormap(0);
    const [r1, , b1] = heatmapColormap(1);
    const [, gMid] = heatmapColormap(0.5);
    assert.ok(b0 > r0 && r1 > b1 && gMid > 200);
    assert.deepEqual(heatmapColormap(-3), heatmapColormap(0));
    assert.deepEqual(heatmapColormap(Number.NaN), heatmapColormap(0));
  });

  test('renders a PNG of the requested size with the hot spot in place', async () => {
    const cam = classActivationMap(featureMap(), 3, 4, 4, [1, 0, 0]);
    const png = await renderHeatmapPng(cam, 4, 4, { width: 64, height: 48 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [64, 48, 3]);
    // Cell (row 1, col 2) covers x 32..47, y 12..23; its centre is hot (red), a far corner is cold (blue).
    const pixel = (x: number, y: number): number[] => [...data.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3)];
    const [rHot, , bHot] = pixel(38, 17);
    const [rCold, , bCold] = pixel(2, 45);
    assert.ok(rHot! > 150 && rHot! > bHot!, `hot pixel ${pixel(38, 17)}`);
    assert.ok(bCold! > rCold!, `cold pixel ${pixel(2, 45)}`);
  });

  test('blends over a greyscale base image', async () => {
    const base = new Uint8Array(32 * 32).fill(200);
    const grid = new Float32Array(16).fill(1);
    const invisible = await renderHeatmapPng(grid, 4, 4, { width: 32, height: 32, basePixels: base, opacity: 0 });
    const raw = await sharp(invisible).raw().toBuffer();
    assert.ok(raw.every((v) => v === 200));
    const blended = await sharp(await renderHeatmapPng(grid, 4, 4, { width: 32, height: 32, basePixels: base }))
      .raw()
      .toBuffer();
    const [r, g, b] = heatmapColormap(1);
    assert.equal(blended[0], Math.round(0.55 * 200 + 0.45 * r));
    assert.equal(blended[1], Math.round(0.55 * 200 + 0.45 * g));
    assert.equal(blended[2], Math.round(0.55 * 200 + 0.45 * b));
    await assert.rejects(renderHeatmapPng(grid, 4, 4, { width: 32, height: 32, basePixels: new Uint8Array(5) }), isAppError);
  });
});

describe('occlusionSensitivity', () => {
  test('highlights exactly the region a toy model looks at', async () => {
    const size = 32;
    // Probability = mean intensity of the top-left 8×8 region of channel 0.
    let calls = 0;
    const runModel = async (batch: Float32Array, n: number): Promise<Float32Array> => {
      calls++;
      const per = batch.length / n;
      const out = new Float32Array(n);
      for (let b = 0; b < n; b++) {
        let s = 0;
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) s += batch[b * per + y * size + x]!;
        out[b] = s / 64;
      }
      return out;
    };
    const input = new Float32Array(2 * size * size).fill(1); // two channels
    const map = await occlusionSensitivity(runModel, input, size, { patch: 4, fill: 0, batchSize: 5 });
    assert.equal(map.baseline, 1);
    assert.deepEqual([map.h, map.w], [8, 8]);
    assert.equal(calls, 1 + Math.ceil(64 / 5));
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const expected = y < 2 && x < 2 ? 0.25 : 0; // a 4×4 patch hides a quarter of the 8×8 region
        assert.ok(Math.abs(map.grid[y * 8 + x]! - expected) < 1e-6, `cell (${y}, ${x}) = ${map.grid[y * 8 + x]}`);
      }
    }
    assert.equal(normalizeMap(map.grid)[0], 1);
  });

  test('checks sizes and the model output length', async () => {
    const model = async (_b: Float32Array, n: number): Promise<Float32Array> => new Float32Array(n + 1);
    await assert.rejects(occlusionSensitivity(model, new Float32Array(16), 4), isAppError);
    await assert.rejects(occlusionSensitivity(async (_b, n) => new Float32Array(n), new Float32Array(15), 4), isAppError);
  });

  test('alphaByValue leaves cold pixels as the base image; region keeps colour off the padding', async () => {
    const base = new Uint8Array(32 * 32).fill(100);
    const grid = new Float32Array([0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    const raw = await sharp(await renderHeatmapPng(grid, 4, 4, { width: 32, height: 32, basePixels: base, alphaByValue: true, opacity: 0.6 })).raw().toBuffer();
    assert.deepEqual([...raw.subarray(0, 3)], [100, 100, 100], 'a corner with value 0 is the plain base image');
    assert.notDeepEqual([...raw.subarray((16 * 32 + 16) * 3, (16 * 32 + 16) * 3 + 3)], [100, 100, 100], 'the hot centre is coloured');
    const clipped = await sharp(await renderHeatmapPng(grid, 4, 4, { width: 32, height: 32, basePixels: base, alphaByValue: true, region: { x0: 0, y0: 0, x1: 16, y1: 32 } })).raw().toBuffer();
    assert.deepEqual([...clipped.subarray((16 * 32 + 20) * 3, (16 * 32 + 20) * 3 + 3)], [100, 100, 100], 'outside the region the base shows');
  });

  test('contentRegion peels letterbox padding; scaleMap scales by a probability', () => {
    const px = new Uint8Array(10 * 10);
    for (let y = 2; y < 8; y++) for (let x = 0; x < 10; x++) px[y * 10 + x] = (x * 37 + y * 11) % 251; // picture rows 2..7
    assert.deepEqual(contentRegion(px, 10, 10), { x0: 0, y0: 2, x1: 10, y1: 8 });
    assert.deepEqual(contentRegion(new Uint8Array(16).fill(7), 4, 4), { x0: 0, y0: 0, x1: 4, y1: 4 }, 'a flat picture is not all padding');
    assert.deepEqual([...scaleMap(Float32Array.from([1, 0.5]), 0.1)].map((v) => Math.round(v * 100) / 100), [0.1, 0.05]);
  });

  test('mapAgreement: the same map agrees fully, an inverted one disagrees, a flat one is undefined', () => {
    const a = { grid: Float32Array.from({ length: 16 }, (_, i) => i), h: 4, w: 4 };
    const inverted = { grid: Float32Array.from({ length: 16 }, (_, i) => 15 - i), h: 4, w: 4 };
    const coarse = { grid: Float32Array.from([0, 1, 2, 3]), h: 2, w: 2 };
    assert.equal(mapAgreement(a, a).spearman, 1);
    assert.equal(mapAgreement(a, a).level, 'high');
    assert.equal(mapAgreement(a, inverted).level, 'low');
    assert.ok(mapAgreement(a, coarse).spearman! > 0.8, 'maps of different sizes are compared on a common grid');
    assert.deepEqual(mapAgreement(a, { grid: new Float32Array(4), h: 2, w: 2 }), { spearman: null, level: 'undefined' });
  });
});
