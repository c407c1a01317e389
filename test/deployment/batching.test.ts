import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateChestXray } from '../../src/core/imaging/index.js';
import { loadModel, predictRaw, startDeployment, type Harness } from './helpers.js';

async function distinctImages(n: number, seed0: number): Promise<Buffer[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => generateChestXray({ seed: seed0 + i, size: 64 })));
}

async function modelStats(h: Harness, name: string, version: string): Promise<{ batches: number; items: number }> {
  const models = (await h.app.inject({ method: 'GET', url: '/models' })).json().models as { name: string; version: string; stats: { batches: number; items: number } }[];
  const m = models.find((x) => x.name === name && x.version === version);
  assert.ok(m, `${name}@${version} is loaded`);
  return m.stats;
}

describe('deployment: dynamic batching, queue bound, hot swap', () => {
  let h: Harness;
  before(async () => {
    h = await startDeployment();
  });
  after(() => h.close());

  test('32 concurrent clients are served without errors in batches larger than 1', async () => {
    await loadModel(h.app, { name: 'batchy', version: 'b1', batching: { max_batch_size: 16, max_queue_delay_ms: 20, max_queue_size: 128 } });
    const images = await distinctImages(64, 1000);
    const before = await modelStats(h, 'batchy', 'b1');
    let next = 0;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < images.length) {
          const img = images[next++]!;
          const res = await predictRaw(h.app, img, 'image/png', '?model=batchy');
          statuses.push(res.statusCode);
        }
      }),
    );
    assert.deepEqual([...new Set(statuses)], [200]);
    const afterStats = await modelStats(h, 'batchy', 'b1');
    const items = afterStats.items - before.items;
    const batches = afterStats.batches - before.batches;
    assert.equal(items, 64);
    assert.ok(items / batches > 1, `mean batch size ${items / batches} should exceed 1`);
  });

  test('beyond the queue bound requests get 503 QUEUE_FULL with Retry-After, and the service keeps serving', async () => {
    await loadModel(h.app, { name: 'tight', version: 't1', batching: { max_batch_size: 1, max_queue_delay_ms: 0, max_queue_size: 2 } });
    const images = await distinctImages(24, 2000);
    const results = await Promise.all(images.map((img) => predictRaw(h.app, img, 'image/png', '?model=tight')));
    const codes = results.map((r) => r.statusCode);
    assert.ok(codes.every((c) => c === 200 || c === 503), `only 200 or 503, got ${[...new Set(codes)]}`);
    const full = results.filter((r) => r.statusCode === 503);
    assert.ok(full.length > 0, 'some requests are refused');
    assert.ok(codes.includes(200), 'some requests are served');
    for (const r of full) {
      assert.equal(r.json().error.code, 'QUEUE_FULL');
      assert.equal(r.headers['retry-after'], '1');
    }
    const later = await predictRaw(h.app, images[0]!, 'image/png', '?model=tight');
    assert.equal(later.statusCode, 200);
  });

  test('a hot swap under load fails no request and ends on the new version', async () => {
    await loadModel(h.app, { name: 'swap', version: 's1', batching: { max_queue_size: 512 } });
    const images = await distinctImages(12, 3000);
    let stop = false;
    const statuses: number[] = [];
    const versions = new Set<string>();
    const load = Promise.all(
      Array.from({ length: 8 }, async (_, k) => {
        let i = k;
        while (!stop) {
          // x-client-key varies nothing here; distinct bytes avoid the cache so every request runs the model.
          const img = Buffer.concat([images[i % images.length]!, Buffer.from(`#${i}-${Math.random()}`)]);
          const res = await predictRaw(h.app, img, 'image/png', '?model=swap');
          statuses.push(res.statusCode);
          if (res.statusCode === 200) versions.add(res.json().model.version);
          i += 8;
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 150));
    await loadModel(h.app, { name: 'swap', version: 's2', batching: { max_queue_size: 512 } });
    await new Promise((r) => setTimeout(r, 150));
    await loadModel(h.app, { name: 'swap', version: 's3', batching: { max_queue_size: 512 } });
    await new Promise((r) => setTimeout(r, 150));
    stop = true;
    await load;
    assert.ok(statuses.length > 8);
    assert.deepEqual([...new Set(statuses)], [200], `statuses: ${JSON.stringify(statuses.filter((s) => s !== 200))}`);
    assert.ok(versions.has('s1'));
    const listed = (await h.app.inject({ method: 'GET', url: '/models' })).json().models.filter((m: { name: string }) => m.name === 'swap');
    assert.deepEqual(
      listed.map((m: { version: string }) => m.version),
      ['s3'],
    );
    const after = (await predictRaw(h.app, images[0]!, 'image/png', '?model=swap')).json();
    assert.equal(after.model.version, 's3');
  });
});
