import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchWriter, Durability } from '../../../src/core/db/batch-writer.js';

describe('BatchWriter: group commit', () => {
  test('waiters start the write at once; items queued during a write share the next batch, in order', async () => {
    const batches: number[][] = [];
    let release: (() => void) | null = null;
    const writer = new BatchWriter<number>(
      async (items) => {
        batches.push(items);
        if (batches.length === 1) await new Promise<void>((r) => (release = r));
      },
      { delayMs: 60_000 },
    );
    const first = writer.durable(writer.add(1));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [[1]], 'no timer: the waiter started the write');
    const rest = [2, 3, 4, 5].map((n) => writer.durable(writer.add(n)));
    release!();
    await Promise.all([first, ...rest]);
    assert.deepEqual(batches, [[1], [2, 3, 4, 5]], 'the four queued during the first write rode one batch');
    assert.equal(writer.pending, 0);
  });

  test('nobody waiting, a batch goes after the delay; maxBatch writes at once', async () => {
    const batches: number[][] = [];
    const writer = new BatchWriter<number>(async (items) => void batches.push(items), { delayMs: 10, maxBatch: 3 });
    writer.add(1);
    assert.deepEqual(batches, []);
    await new Promise((r) => setTimeout(r, 40));
    assert.deepEqual(batches, [[1]]);
    writer.add(2);
    writer.add(3);
    writer.add(4);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [[1], [2, 3, 4]]);
  });

  test('a failed write rejects its waiters and keeps the items, which the next write stores first', async () => {
    let fail = true;
    const stored: number[] = [];
    const writer = new BatchWriter<number>(
      async (items) => {
        if (fail) throw new Error('disk full');
        stored.push(...items);
      },
      { delayMs: 60_000, retryMs: 60_000 },
    );
    await assert.rejects(writer.durable(writer.add(1)), /disk full/);
    assert.equal(writer.pending, 1);
    fail = false;
    await writer.durable(writer.add(2));
    assert.deepEqual(stored, [1, 2]);
  });

  test('Durability: a request that queued nothing passes; one that did waits for every writer', async () => {
    const stored: string[] = [];
    const a = new BatchWriter<string>(async (items) => void stored.push(...items), { delayMs: 60_000 });
    const b = new BatchWriter<string>(async (items) => void stored.push(...items), { delayMs: 60_000 });
    const d = new Durability();
    d.register(a);
    const unregister = d.register(b);
    const mark = d.mark();
    await d.settle(mark);
    assert.deepEqual(stored, []);
    a.add('audit');
    b.add('prediction');
    await d.settle(mark);
    assert.deepEqual(stored.sort(), ['audit', 'prediction']);
    unregister();
    assert.equal(d.mark(), 1);
  });
});

describe('the request barrier in every service app', () => {
  test('a response waits for its audit record; when it cannot be stored the answer is 503, not success', async () => {
    const { testConfig } = await import('../../../src/core/config/index.js');
    const { openPlatform } = await import('../../../src/core/platform.js');
    const { createServiceApp } = await import('../../../src/core/http/index.js');
    const { tempHome } = await import('../../helpers/engines.js');
    const home = tempHome();
    const platform = await openPlatform(testConfig(home.dir));
    const app = await createServiceApp({
      name: 'demo',
      title: 'demo',
      description: 'demo',
      platform,
      plugin: async (a) => {
        a.post('/act', { config: { role: 'viewer' } }, async () => ({ id: platform.audit.record({ actor: 't', action: 'demo.act', resource: 'demo:1' }) }));
      },
    });
    try {
      const ok = await app.inject({ method: 'POST', url: '/act' });
      assert.equal(ok.statusCode, 200);
      // No flush: the record was stored before the answer went out.
      const rows = await platform.database.db.selectFrom('audit_log').select('id').where('id', '=', ok.json().id).execute();
      assert.equal(rows.length, 1, 'stored before the response');

      await platform.database.db.schema.alterTable('audit_log').renameTo('audit_log_gone').execute();
      const failed = await app.inject({ method: 'POST', url: '/act' });
      assert.equal(failed.statusCode, 503, failed.body);
      assert.equal(failed.json().error.code, 'SERVICE_UNAVAILABLE');
      assert.match(failed.json().error.message, /audit trail could not be written/);
      await platform.database.db.schema.alterTable('audit_log_gone').renameTo('audit_log').execute();
    } finally {
      await app.close();
      await platform.close();
      home.cleanup();
    }
  });
});
