import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '../../../src/core/errors.js';
import { DynamicBatcher } from '../../../src/deployment/service/batcher.js';

/** A model that doubles its inputs and records the batch sizes it saw. */
function doubler(sizes: number[], gate?: Promise<void>) {
  return async (inputs: number[]) => {
    sizes.push(inputs.length);
    if (gate) await gate;
    return inputs.map((x) => x * 2);
  };
}

describe('DynamicBatcher', () => {
  test('concurrent submits run together, each gets its own output', async () => {
    const sizes: number[] = [];
    const b = new DynamicBatcher(doubler(sizes), { maxBatchSize: 8, maxQueueDelayMs: 50, maxQueueSize: 100 });
    const reservations = Array.from({ length: 5 }, () => b.reserve());
    const results = await Promise.all(reservations.map((r, i) => b.submit(i, r)));
    assert.deepEqual(
      results.map((r) => r.output),
      [0, 2, 4, 6, 8],
    );
    assert.deepEqual(sizes, [5], 'the batch left once no announced request was still on its way');
    assert.equal(results[0]!.batchSize, 5);
    assert.deepEqual(b.stats, { batches: 1, items: 5, meanBatchSize: 5 });
  });

  test('a lone request does not wait for the delay', async () => {
    const sizes: number[] = [];
    const b = new DynamicBatcher(doubler(sizes), { maxBatchSize: 8, maxQueueDelayMs: 10_000, maxQueueSize: 10 });
    const r = await b.submit(21);
    assert.equal(r.output, 42);
  });

  test('batches are capped at maxBatchSize; requests arriving during a run form the next batch', async () => {
    const sizes: number[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const b = new DynamicBatcher(doubler(sizes, gate), { maxBatchSize: 4, maxQueueDelayMs: 1, maxQueueSize: 100 });
    const first = b.submit(0);
    const rest = Array.from({ length: 9 }, (_, i) => b.submit(i + 1));
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(b.depth, 9);
    open();
    await Promise.all([first, ...rest]);
    assert.deepEqual(sizes, [1, 4, 4, 1]);
  });

  test('a full queue refuses with QUEUE_FULL and Retry-After details; cancelled reservations free room', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const b = new DynamicBatcher(doubler([], gate), { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 2 });
    const running = b.submit(1);
    const q1 = b.submit(2);
    const r = b.reserve();
    assert.throws(
      () => b.reserve(),
      (err: unknown) => err instanceof AppError && err.code === 'QUEUE_FULL' && (err.details as { retryAfter: number }).retryAfter === 1,
    );
    assert.throws(() => b.submit(3), /queue is full/);
    r.cancel();
    r.cancel();
    const q2 = b.submit(4);
    open();
    assert.deepEqual((await Promise.all([running, q1, q2])).map((x) => x.output), [2, 4, 8]);
  });

  test('a failing model rejects every request of its batch and the next batch still runs', async () => {
    let calls = 0;
    const b = new DynamicBatcher(
      async (inputs: number[]) => {
        calls++;
        if (calls === 1) throw new Error('boom');
        return inputs;
      },
      { maxBatchSize: 4, maxQueueDelayMs: 0, maxQueueSize: 10 },
    );
    await assert.rejects(b.submit(1), /boom/);
    assert.equal((await b.submit(2)).output, 2);
    await b.drain();
  });

  test('knobs out of range are refused', () => {
    assert.throws(() => new DynamicBatcher(async (x: number[]) => x, { maxBatchSize: 0, maxQueueDelayMs: 1, maxQueueSize: 1 }), /max_batch_size/);
    assert.throws(() => new DynamicBatcher(async (x: number[]) => x, { maxBatchSize: 1, maxQueueDelayMs: -1, maxQueueSize: 1 }), /max_queue_delay_ms/);
  });
});
