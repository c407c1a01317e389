import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PermanentJobError, type JobQueue } from '../../src/core/queue/index.js';
import type { Fixture } from './object-store.contract.js';

export interface QueueFixture extends Fixture<JobQueue> {
  /** Closes this queue and opens a new one on the same backing store (a process restart). */
  reopen(): Promise<JobQueue>;
}

async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 15000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The JobQueue contract, run against the local (SQLite, PostgreSQL) and BullMQ (Redis) queues. */
export function describeQueueContract(name: string, make: () => Promise<QueueFixture | null>): void {
  describe(`JobQueue contract: ${name}`, () => {
    let fx: QueueFixture | null;
    let queue: JobQueue;
    before(async () => {
      fx = await make();
      if (fx) queue = fx.value;
    });
    after(async () => fx?.cleanup());
    const it = (title: string, fn: () => Promise<void>) => test(title, async (t) => (fx ? fn() : t.skip(`${name} unavailable`)));

    it('runs a job, records progress and the result', async () => {
      await queue.process<{ n: number }>('double', async (job) => {
        await job.updateProgress({ pct: 50 });
        return { doubled: job.data.n * 2 };
      });
      const id = await queue.add('double', 'calc', { n: 21 });
      const rec = await waitFor(async () => {
        const r = await queue.get('double', id);
        return r?.state === 'completed' ? r : null;
      });
      assert.deepEqual(rec.result, { doubled: 42 });
      assert.deepEqual(rec.data, { n: 21 });
      assert.equal(rec.name, 'calc');
    });

    it('a failing job ends failed with its error; retries while attempts remain', async () => {
      let calls = 0;
      await queue.process('flaky', async () => {
        calls++;
        throw new Error(`boom ${calls}`);
      });
      const id = await queue.add('flaky', 'f', {}, { attempts: 2 });
      const rec = await waitFor(async () => {
        const r = await queue.get('flaky', id);
        return r?.state === 'failed' ? r : null;
      });
      assert.equal(calls, 2);
      assert.match(rec.error ?? '', /boom 2/);
    });

    it('a retry with backoff waits (waiting, due later) and then runs; a PermanentJobError fails at once', async () => {
      let calls = 0;
      let released = false;
      await queue.process('backoff', async () => {
        calls++;
        if (!released) throw new Error(`down ${calls}`);
        return 'delivered';
      });
      const id = await queue.add('backoff', 'b', {}, { attempts: 5, backoffMs: 200 });
      const waiting = await waitFor(async () => {
        const r = await queue.get('backoff', id);
        return r && r.state === 'waiting' && r.attempts >= 1 && r.error ? r : null;
      });
      assert.match(waiting.error ?? '', /down \d/);
      released = true;
      const done = await waitFor(async () => {
        const r = await queue.get('backoff', id);
        return r?.state === 'completed' ? r : null;
      });
      assert.equal(done.result, 'delivered');
      assert.ok(done.attempts >= 2 && done.attempts <= 5, `attempts ${done.attempts}`);

      let permanentCalls = 0;
      await queue.process('permanent', async () => {
        permanentCalls++;
        throw new PermanentJobError('cannot ever work');
      });
      const pid = await queue.add('permanent', 'p', {}, { attempts: 4, backoffMs: 50 });
      const failed = await waitFor(async () => {
        const r = await queue.get('permanent', pid);
        return r?.state === 'failed' ? r : null;
      });
      assert.equal(permanentCalls, 1);
      assert.match(failed.error ?? '', /cannot ever work/);
    });

    it('respects concurrency and counts states', async () => {
      let running = 0;
      let peak = 0;
      await queue.process(
        'conc',
        async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 60));
          running--;
        },
        { concurrency: 2 },
      );
      const ids = await Promise.all([1, 2, 3, 4, 5].map((i) => queue.add('conc', 'c', { i })));
      await waitFor(async () => (await queue.counts('conc')).completed === 5);
      assert.equal(peak, 2);
      assert.equal(ids.length, 5);
    });

    it('adding the same jobId twice makes one job', async () => {
      const a = await queue.add('idem', 'x', { v: 1 }, { jobId: 'same-id-1' });
      const b = await queue.add('idem', 'x', { v: 2 }, { jobId: 'same-id-1' });
      assert.equal(a, b);
      const rec = await queue.get('idem', a);
      assert.deepEqual(rec?.data, { v: 1 });
    });

    it('unknown job ids are null', async () => {
      assert.equal(await queue.get('double', 'no-such-job'), null);
    });

    it('a queued job survives a restart and runs afterwards', async () => {
      const id = await queue.add('later', 'persisted', { keep: true });
      queue = await fx!.reopen();
      let seen: unknown = null;
      await queue.process('later', async (job) => {
        seen = job.data;
        return 'ok';
      });
      await waitFor(async () => (await queue.get('later', id))?.state === 'completed');
      assert.deepEqual(seen, { keep: true });
    });
  });
}
