/**
 * Prediction traffic over time: the SQL bucketing on both engines, and GET /traffic (defaults,
 * alignment, filters, validation).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openDatabase, type Database } from '../../src/core/db/index.js';
import { dropPostgresSchema } from '../../src/core/db/postgres.js';
import { KyselyPredictionStore, type PredictionRecord } from '../../src/deployment/store/prediction-store.js';
import { StorePredictionQueries } from '../../src/deployment/service/prediction-queries.js';
import { defaultBucketSeconds } from '../../src/monitoring/routes/timeline.js';
import { engineGate, postgresReachable, POSTGRES_URL, tempHome, uniqueName } from '../helpers/engines.js';
import { insertPredictions, predictionRecords, startMonitoring, type Harness } from './helpers.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 27, 10, 0, 0);

/** 3 predictions in minute 0 (one positive, one cached), none in minute 1, 2 in minute 2 (both positive), a shadow call and another model. */
function records(): PredictionRecord[] {
  const base = predictionRecords({ idPrefix: 'tl', start: T0, stepMs: 1000, stats: [], embeddings: [], probabilities: [0.2, 0.9, 0.1, 0.7, 0.8, 0.95, 0.6] });
  const at = (i: number, t: number, extra: Partial<PredictionRecord> = {}) => ({ ...base[i]!, time: t, ...extra });
  return [
    at(0, T0 + 1000, { latencyMs: 10 }),
    at(1, T0 + 2000, { latencyMs: 20, cached: true }),
    at(2, T0 + 59_999, { latencyMs: 30 }),
    at(3, T0 + 2 * MIN, { latencyMs: 40 }),
    at(4, T0 + 2 * MIN + 500, { latencyMs: 60 }),
    at(5, T0 + 2 * MIN + 600, { latencyMs: 999, shadow: true, variant: 'B' }),
    at(6, T0 + MIN + 5, { modelName: 'other', latencyMs: 5 }),
  ];
}

function describeTimeline(name: string, make: () => Promise<{ database: Database; cleanup(): Promise<void> } | null>): void {
  describe(`prediction timeline: ${name}`, () => {
    let fx: { database: Database; cleanup(): Promise<void> } | null = null;
    let source: StorePredictionQueries;
    before(async () => {
      fx = await make();
      if (!fx) return;
      await new KyselyPredictionStore(fx.database).insertMany(records());
      source = new StorePredictionQueries(fx.database);
    });
    after(async () => fx && (await fx.database.close(), await fx.cleanup()));

    test('counts, positives, cached and latency per bucket; shadow calls left out; every bucket present', async (t) => {
      if (!fx) return t.skip(`${name} unavailable`);
      const b = await source.timeline({ model: 'pneumonia', since: T0, until: T0 + 3 * MIN, bucketMs: MIN });
      assert.deepEqual(
        b.map((x) => [x.t - T0, x.count, x.positives, x.cached, x.latencyMeanMs, x.latencyMaxMs]),
        [
          [0, 3, 1, 1, 20, 30],
          [MIN, 0, 0, 0, null, null],
          [2 * MIN, 2, 2, 0, 50, 60],
        ],
      );
      const all = await source.timeline({ since: T0, until: T0 + 3 * MIN, bucketMs: MIN });
      assert.deepEqual(all.map((x) => x.count), [3, 1, 2], 'without a model filter the other model counts too');
      const v = await source.timeline({ model: 'pneumonia', version: '2', since: T0, until: T0 + 3 * MIN, bucketMs: MIN });
      assert.deepEqual(v.map((x) => x.count), [0, 0, 0]);
      const wide = await source.timeline({ model: 'pneumonia', since: T0, until: T0 + 3 * MIN, bucketMs: 2 * MIN });
      assert.deepEqual(wide.map((x) => x.count), [3, 2], 'until is exclusive per bucket edge, and a partial last bucket is kept');
    });
  });
}

describeTimeline('SQLite (embedded)', async () => {
  const home = tempHome();
  return { database: await openDatabase(`sqlite:${path.join(home.dir, 'x.db')}`), cleanup: async () => home.cleanup() };
});

describeTimeline('PostgreSQL (scale)', async () => {
  if (!(await engineGate('PostgreSQL', await postgresReachable()))) return null;
  const schema = uniqueName('tl');
  return { database: await openDatabase(POSTGRES_URL, { schema }), cleanup: () => dropPostgresSchema(POSTGRES_URL, schema) };
});

test('the default bucket is a round width giving at most 120 buckets', () => {
  assert.equal(defaultBucketSeconds(3600_000), 60);
  assert.equal(defaultBucketSeconds(24 * 3600_000), 900);
  assert.equal(defaultBucketSeconds(7 * 24 * 3600_000), 3 * 3600);
  assert.equal(defaultBucketSeconds(10 * 365 * 86_400_000), Math.ceil((10 * 365 * 86_400) / 120));
});

describe('GET /traffic', () => {
  let h: Harness;
  before(async () => {
    h = await startMonitoring();
    await insertPredictions(h.platform, records());
  });
  after(async () => h.close());

  test('buckets aligned to the width, with rates', async () => {
    const res = await h.app.inject({ url: '/traffic', query: { model: 'pneumonia', since: String(T0 + 30_000), until: new Date(T0 + 3 * MIN).toISOString(), bucket_s: '60' } });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.since, T0, 'since aligned down to the minute');
    assert.equal(body.bucket_s, 60);
    assert.equal(body.total, 5);
    assert.equal(body.positives, 3);
    assert.deepEqual(body.buckets.map((b: { positive_rate: number | null }) => b.positive_rate), [1 / 3, null, 1]);
    assert.equal(body.buckets[2].latency_max_ms, 60);
  });

  test('defaults: the last 24 hours in 15-minute buckets', async () => {
    const res = await h.app.inject({ url: '/traffic' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().bucket_s, 900);
    assert.ok(res.json().buckets.length <= 97);
    assert.equal(res.json().model, null);
  });

  test('bad ranges are 400s with the error envelope', async () => {
    const bad: Record<string, string>[] = [
      { since: String(T0 + MIN), until: String(T0) },
      { since: 'yesterday-ish' },
      { since: String(T0), until: String(T0 + 30 * 86_400_000), bucket_s: '60' },
      { bucket_s: '0' },
    ];
    for (const query of bad) {
      const res = await h.app.inject({ url: '/traffic', query });
      assert.equal(res.statusCode, 400, `${JSON.stringify(query)} → ${res.body}`);
      assert.ok(res.json().error.code, res.body);
    }
  });
});
