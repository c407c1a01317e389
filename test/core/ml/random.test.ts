import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, createRng } from '../../../src/core/ml/random.js';

describe('Rng', () => {
  test('same seed, same stream; different seeds, different streams', () => {
    const a = new Rng(7);
    const b = createRng(7);
    const c = new Rng(8);
    const sa = Array.from({ length: 5 }, () => a.next());
    assert.deepEqual(sa, Array.from({ length: 5 }, () => b.next()));
    assert.notDeepEqual(sa, Array.from({ length: 5 }, () => c.next()));
    assert.notEqual(new Rng('run-1').next(), new Rng('run-2').next());
  });

  test('uniforms lie in [0, 1) with mean ≈ 0.5', () => {
    const rng = new Rng(1);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const u = rng.next();
      assert.ok(u >= 0 && u < 1);
      sum += u;
    }
    assert.ok(Math.abs(sum / 20000 - 0.5) < 0.01);
  });

  test('int() covers its range uniformly', () => {
    const rng = new Rng(2);
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[rng.int(6)]++;
    for (const c of counts) assert.ok(Math.abs(c - 10000) < 400, `count ${c}`);
    assert.throws(() => rng.int(0), RangeError);
  });

  test('normal() has the requested mean and standard deviation', () => {
    const rng = new Rng(3);
    const xs = Array.from({ length: 40000 }, () => rng.normal(2, 3));
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / xs.length);
    assert.ok(Math.abs(m - 2) < 0.05, `mean ${m}`);
    assert.ok(Math.abs(sd - 3) < 0.05, `sd ${sd}`);
  });

  test('shuffle() permutes in place', () => {
    const rng = new Rng(4);
    const arr = Array.from({ length: 50 }, (_, i) => i);
    const out = rng.shuffle(arr);
    assert.equal(out, arr);
    assert.notDeepEqual(arr, Array.from({ length: 50 }, (_, i) => i));
    assert.deepEqual([...arr].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
    const typed = rng.shuffle(Uint32Array.from({ length: 10 }, (_, i) => i));
    assert.deepEqual([...typed].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('sampleIndices() without replacement gives distinct in-range indices', () => {
    const rng = new Rng(5);
    for (const [n, k] of [
      [10, 10],
      [1000, 5],
      [100, 60],
    ] as const) {
      const idx = rng.sampleIndices(n, k);
      assert.equal(idx.length, k);
      assert.equal(new Set(idx).size, k);
      for (const i of idx) assert.ok(i < n);
    }
    assert.throws(() => rng.sampleIndices(3, 4), RangeError);
    const boot = rng.sampleIndices(5, 50, { replace: true });
    assert.equal(boot.length, 50);
    assert.ok(new Set(boot).size <= 5);
  });
});
