import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Cache } from '../../src/core/cache/index.js';
import type { Fixture } from './object-store.contract.js';

/** The Cache contract, run against memory and Redis. */
export function describeCacheContract(name: string, make: () => Promise<Fixture<Cache> | null>): void {
  describe(`Cache contract: ${name}`, () => {
    let fx: Fixture<Cache> | null;
    let cache: Cache;
    before(async () => {
      fx = await make();
      if (fx) cache = fx.value;
    });
    after(async () => fx?.cleanup());
    const it = (title: string, fn: () => Promise<void>) => test(title, async (t) => (fx ? fn() : t.skip(`${name} unavailable`)));

    it('set/get strings and buffers', async () => {
      await cache.set('s', 'value');
      assert.equal(await cache.get('s'), 'value');
      const buf = Buffer.from([0, 1, 2, 255]);
      await cache.set('b', buf);
      assert.deepEqual(await cache.getBuffer('b'), buf);
    });

    it('missing keys are null; delete removes', async () => {
      assert.equal(await cache.get('missing'), null);
      assert.equal(await cache.getBuffer('missing'), null);
      await cache.set('d', 'x');
      await cache.delete('d');
      assert.equal(await cache.get('d'), null);
    });

    it('entries expire after their TTL', async () => {
      await cache.set('ttl', 'x', 1);
      assert.equal(await cache.get('ttl'), 'x');
      await new Promise((r) => setTimeout(r, 1300));
      assert.equal(await cache.get('ttl'), null);
    });

    it('increment counts in a fixed window: the first increment starts the TTL, later ones keep it', async () => {
      assert.equal(await cache.increment('n', 1), 1);
      assert.equal(await cache.increment('n', 60), 2);
      assert.equal(await Promise.all([cache.increment('n', 60), cache.increment('n', 60)]).then((v) => v.sort().join(',')), '3,4');
      await new Promise((r) => setTimeout(r, 1300));
      assert.equal(await cache.increment('n', 60), 1, 'the window started by the first increment (1 s) expired');
    });

    it('clear removes every key of this cache', async () => {
      await cache.set('c1', '1');
      await cache.set('c2', '2');
      await cache.clear();
      assert.equal(await cache.get('c1'), null);
      assert.equal(await cache.get('c2'), null);
    });

    it('ping answers true', async () => {
      assert.equal(await cache.ping(), true);
    });
  });
}
