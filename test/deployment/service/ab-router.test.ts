import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AbRouter, normaliseRouting, stickyPoint } from '../../../src/deployment/service/ab-router.js';

describe('AbRouter', () => {
  test('split weights are honoured for random traffic', () => {
    const router = new AbRouter();
    router.set(normaliseRouting({ model: 'm', mode: 'split', sticky: false, variants: [{ version: '1', weight: 9 }, { version: '2', weight: 1 }] }, 'tester'));
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    let b = 0;
    for (let i = 0; i < 10_000; i++) if (router.route('m', null, random)!.variant.name === 'B') b++;
    assert.ok(b > 850 && b < 1150, `B got ${b} of 10000`);
  });

  test('sticky routing maps a client key to one variant; zero-weight variants get nothing', () => {
    const router = new AbRouter();
    router.set(normaliseRouting({ model: 'm', mode: 'split', variants: [{ version: '1', weight: 1 }, { version: '2', weight: 1 }, { version: '3', weight: 0 }] }, 't'));
    for (const key of ['a', 'b', 'c', 'd']) {
      const first = router.route('m', key)!.variant.name;
      for (let i = 0; i < 5; i++) assert.equal(router.route('m', key, Math.random)!.variant.name, first);
    }
    const names = new Set(Array.from({ length: 500 }, (_, i) => router.route('m', `k${i}`)!.variant.name));
    assert.deepEqual([...names].sort(), ['A', 'B']);
    assert.equal(stickyPoint('m', 'x'), stickyPoint('m', 'x'));
    assert.notEqual(stickyPoint('m', 'x'), stickyPoint('n', 'x'));
  });

  test('shadow mode answers with the first variant and mirrors to the others', () => {
    const router = new AbRouter();
    router.set(normaliseRouting({ model: 'm', mode: 'shadow', variants: [{ version: '1' }, { version: '2' }, { version: '3' }] }, 't'));
    const d = router.route('m', 'k')!;
    assert.equal(d.variant.version, '1');
    assert.deepEqual(
      d.shadows.map((s) => s.version),
      ['2', '3'],
    );
    assert.deepEqual([...router.pinned('m')].sort(), ['1', '2', '3']);
    assert.equal(router.route('other', 'k'), null);
  });

  test('bad configs are refused', () => {
    assert.throws(() => normaliseRouting({ model: 'm', mode: 'split', variants: [{ version: '1' }] }, 't'), /2 to 8/);
    assert.throws(() => normaliseRouting({ model: 'm', mode: 'split', variants: [{ version: '1', weight: 0 }, { version: '2', weight: 0 }] }, 't'), /not all be 0/);
    assert.throws(() => normaliseRouting({ model: 'm', mode: 'split', variants: [{ version: '1', name: 'x' }, { version: '2', name: 'x' }] }, 't'), /distinct/);
  });
});
