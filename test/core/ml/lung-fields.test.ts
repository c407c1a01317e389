import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppError } from '../../../src/core/errors.js';
import { renderChestXray } from '../../../src/core/imaging/synthetic.js';
import { buildLungAtlas, lungFieldMass, summarizeLungFieldMass, type LungAtlas } from '../../../src/core/ml/lung-fields.js';

const SIDE = 32;

function atlasOfSynthetic(): LungAtlas {
  const images = Array.from({ length: 16 }, (_, i) => ({ pixels: renderChestXray({ seed: `atlas-${i}`, size: 96, pneumonia: i % 2 === 0 }).pixels, size: 96 }));
  return buildLungAtlas(images, SIDE);
}

/** A 16×16 map with one Gaussian blob at (u, v) in unit coordinates. */
function blob(u: number, v: number, sigma = 0.04): { grid: Float32Array; h: number; w: number } {
  const n = 16;
  const grid = new Float32Array(n * n);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) grid[y * n + x] = Math.exp(-(((x + 0.5) / n - u) ** 2 + ((y + 0.5) / n - v) ** 2) / (2 * sigma * sigma));
  return { grid, h: n, w: n };
}

const at = (a: LungAtlas, u: number, v: number) => a.mask[Math.floor(v * a.side) * a.side + Math.floor(u * a.side)];

describe('lung-field atlas', () => {
  const atlas = atlasOfSynthetic();

  test('covers both lungs of the synthetic chests and not the neck, abdomen, mediastinum or the air beside the body', () => {
    assert.equal(at(atlas, 0.3, 0.45), 1, 'left lung');
    assert.equal(at(atlas, 0.7, 0.45), 1, 'right lung');
    assert.equal(at(atlas, 0.5, 0.05), 0, 'neck');
    assert.equal(at(atlas, 0.5, 0.92), 0, 'abdomen');
    assert.equal(at(atlas, 0.5, 0.45), 0, 'mediastinum');
    assert.equal(at(atlas, 0.03, 0.5), 0, 'image edge');
    assert.ok(atlas.coverage > 0.15 && atlas.coverage < 0.4, `coverage ${atlas.coverage}`);
    assert.equal(atlas.images, 16);
  });

  test('refuses no images and flat images', () => {
    assert.throws(() => buildLungAtlas([], SIDE), (e) => isAppError(e) && e.code === 'INVALID_INPUT');
    const flat = { pixels: new Uint8Array(64 * 64).fill(120), size: 64 };
    assert.throws(() => buildLungAtlas([flat, flat], SIDE), (e) => isAppError(e) && e.code === 'INVALID_INPUT');
  });
});

describe('lungFieldMass', () => {
  const atlas = atlasOfSynthetic();

  test('a blob on a lung is mass inside; on the neck, abdomen, mediastinum or a side marker it is outside, in its region', () => {
    assert.ok(lungFieldMass(blob(0.3, 0.45), atlas)!.inside > 0.9);
    assert.ok(lungFieldMass(blob(0.7, 0.5), atlas)!.inside > 0.9);
    const neck = lungFieldMass(blob(0.5, 0.04), atlas)!;
    assert.ok(neck.inside < 0.05 && neck.above > 0.9, JSON.stringify(neck));
    const abdomen = lungFieldMass(blob(0.5, 0.95), atlas)!;
    assert.ok(abdomen.inside < 0.05 && abdomen.below > 0.9, JSON.stringify(abdomen));
    const mediastinum = lungFieldMass(blob(0.5, 0.45, 0.02), atlas)!;
    assert.ok(mediastinum.inside < 0.2 && mediastinum.between > 0.8, JSON.stringify(mediastinum));
    const marker = lungFieldMass(blob(0.03, 0.4, 0.02), atlas)!;
    assert.ok(marker.inside < 0.1 && marker.lateral > 0.8, JSON.stringify(marker));
    for (const m of [neck, abdomen, mediastinum, marker]) assert.ok(Math.abs(m.inside + m.above + m.below + m.between + m.lateral - 1) < 1e-9);
  });

  test('a uniform map puts the atlas coverage inside; an empty map has no mass; negative values count as 0', () => {
    const uniform = lungFieldMass({ grid: new Float32Array(64).fill(0.3), h: 8, w: 8 }, atlas)!;
    assert.ok(Math.abs(uniform.inside - atlas.coverage) < 1e-6);
    assert.equal(lungFieldMass({ grid: new Float32Array(64), h: 8, w: 8 }, atlas), null);
    const b = blob(0.3, 0.45);
    const withNegatives = { ...b, grid: Float32Array.from(b.grid, (v, i) => (i % 3 === 0 ? -v : v)) };
    assert.ok(lungFieldMass(withNegatives, atlas)!.inside > 0.9);
  });

  test('summary: means, the share of maps mostly outside, per label', () => {
    const s = summarizeLungFieldMass([
      { label: 'PNEUMONIA', mass: lungFieldMass(blob(0.3, 0.45), atlas) },
      { label: 'PNEUMONIA', mass: lungFieldMass(blob(0.5, 0.04), atlas) },
      { label: 'NORMAL', mass: lungFieldMass(blob(0.7, 0.45), atlas) },
      { label: 'NORMAL', mass: null },
    ]);
    assert.equal(s.n, 4);
    assert.equal(s.empty, 1);
    assert.ok(Math.abs(s.share_mostly_outside! - 1 / 3) < 1e-9);
    assert.ok(s.by_label.PNEUMONIA!.mean_inside! > 0.4 && s.by_label.PNEUMONIA!.mean_inside! < 0.6);
    assert.equal(s.by_label.PNEUMONIA!.share_mostly_outside, 0.5);
    assert.equal(s.by_label.NORMAL!.n, 2);
    assert.ok(s.by_label.NORMAL!.mean_inside! > 0.9);
    assert.ok(s.regions!.above > 0.25);
    assert.equal(summarizeLungFieldMass([]).mean_inside, null);
  });
});
