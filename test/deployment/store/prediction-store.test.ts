import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { testConfig } from '../../../src/core/config/index.js';
import { openPlatform, type Platform } from '../../../src/core/platform.js';
import { PredictionRecorder } from '../../../src/deployment/service/prediction-recorder.js';
import { KyselyPredictionStore, type PredictionRecord } from '../../../src/deployment/store/prediction-store.js';
import { TOPICS } from '../../../src/core/events/index.js';

function record(i: number, over: Partial<PredictionRecord> = {}): PredictionRecord {
  return {
    id: `p-${String(i).padStart(4, '0')}`,
    time: 1_000_000 + Math.floor(i / 3),
    modelName: 'pneumonia',
    modelVersion: i % 2 ? '2' : '1',
    variant: 'default',
    shadow: false,
    probability: i / 100,
    label: i >= 50 ? 'PNEUMONIA' : 'NORMAL',
    threshold: 0.5,
    imageSha256: 'f'.repeat(64),
    heatmapMethod: 'cam',
    stats: null,
    embedding: [i, -i],
    latencyMs: 3.5,
    requestId: null,
    actor: 'tester',
    cached: false,
    ...over,
  };
}

describe('KyselyPredictionStore and PredictionRecorder', () => {
  let home: string;
  let platform: Platform;
  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-predstore-'));
    platform = await openPlatform(testConfig(home));
  });
  after(async () => {
    await platform.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('the recorder writes in batches and publishes what it wrote', async () => {
    const store = new KyselyPredictionStore(platform.database);
    const published: { count: number }[] = [];
    await platform.events.subscribe(TOPICS.predictionRecorded, (p: { count: number }) => void published.push(p));
    const recorder = new PredictionRecorder(store, { events: platform.events }, { flushDelayMs: 10_000, maxBuffered: 100 });
    for (let i = 0; i < 250; i++) recorder.record(record(i));
    for (let i = 0; i < 50 && recorder.pending > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(recorder.pending, 0, 'a full buffer is written without waiting for the timer');
    await recorder.flush();
    assert.equal(recorder.pending, 0);
    assert.equal((await store.list({ limit: 10_000 })).items.length, 250);
    assert.equal(published.reduce((s, p) => s + p.count, 0), 250);
  });

  test('list filters and pages in time order without gaps or repeats', async () => {
    const store = new KyselyPredictionStore(platform.database);
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await store.list({ version: '1', pageSize: 17, pageToken: token, order: 'asc' });
      seen.push(...page.items.map((r) => r.id));
      token = page.nextPageToken;
    } while (token);
    assert.equal(seen.length, 125);
    assert.equal(new Set(seen).size, 125);
    assert.deepEqual(seen, [...seen].sort());
    const window = await store.list({ since: 1_000_010, until: 1_000_011, limit: 100 });
    assert.equal(window.items.length, 6);
    assert.ok(window.items[0]!.time >= window.items[5]!.time, 'newest first by default');
    const one = await store.require('p-0007');
    assert.deepEqual(one.embedding, [7, -7]);
    assert.equal(one.modelVersion, '2');
    await assert.rejects(store.require('missing'), /does not exist/);
    await assert.rejects(store.list({ pageToken: 'garbage' }), /page token/);
  });
});
