import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { EventBus } from '../../src/core/events/index.js';
import type { Fixture } from './object-store.contract.js';

/** The EventBus contract, run against in-process and Redis pub/sub. */
export function describeEventBusContract(name: string, make: () => Promise<Fixture<EventBus> | null>): void {
  describe(`EventBus contract: ${name}`, () => {
    let fx: Fixture<EventBus> | null;
    let bus: EventBus;
    before(async () => {
      fx = await make();
      if (fx) bus = fx.value;
    });
    after(async () => fx?.cleanup());
    const it = (title: string, fn: () => Promise<void>) => test(title, async (t) => (fx ? fn() : t.skip(`${name} unavailable`)));

    it('delivers published payloads to subscribers of the topic only', async () => {
      const got: unknown[] = [];
      const other: unknown[] = [];
      const unsub = await bus.subscribe('model.stage_changed', (p) => void got.push(p));
      await bus.subscribe('other.topic', (p) => void other.push(p));
      await bus.publish('model.stage_changed', { name: 'pneumonia', version: 2 });
      for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(got, [{ name: 'pneumonia', version: 2 }]);
      assert.deepEqual(other, []);
      await unsub();
      await bus.publish('model.stage_changed', { name: 'late' });
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(got.length, 1);
    });

    it('a throwing subscriber does not break delivery to others', async () => {
      const got: unknown[] = [];
      await bus.subscribe('t2', () => {
        throw new Error('subscriber bug');
      });
      await bus.subscribe('t2', (p) => void got.push(p));
      await bus.publish('t2', 1);
      for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(got, [1]);
    });
  });
}
