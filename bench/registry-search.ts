// Experiment-tracking benchmark (issue 5 targets): `runs/search` with a metric filter and order_by
// over 10,000 runs × 20 metrics, p50 < 100 ms; `runs/log-batch` of 1,000 metrics < 200 ms. On
// SQLite, and on PostgreSQL when reachable. Figures only — nothing here fails on a slow machine.
//   npx tsx bench/registry-search.ts [--runs 10000] [--engines sqlite,postgres]
import { mkdtempSync, rmSync } from 'node:fs';
import { sql } from 'kysely';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { testConfig } from '../src/core/config/index.js';
import { dropPostgresSchema } from '../src/core/db/postgres.js';
import { openPlatform } from '../src/core/platform.js';
import { buildModelRegistryApp } from '../src/model-registry/app.js';
import { SqlTrackingStore } from '../src/model-registry/store/sql-tracking-store.js';
import type { Metric } from '../src/model-registry/store/tracking-store.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const RUNS = Number(arg('runs', '10000'));
const METRICS = 20;
const QUERIES = 20;
const POSTGRES_URL = process.env.XRAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.XRAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const engines = arg('engines', 'sqlite,postgres').split(',');

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function reachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || 5432) });
    const done = (ok: boolean) => (s.destroy(), resolve(ok));
    s.setTimeout(1500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function bench(engine: 'sqlite' | 'postgres'): Promise<void> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'xray-bench-registry-'));
  const schema = `bench_${Math.random().toString(36).slice(2, 10)}`;
  const config = testConfig(home, engine === 'postgres' ? { XRAY_DATABASE_URL: POSTGRES_URL, XRAY_QUEUE_URL: REDIS_URL, XRAY_REDIS_NAMESPACE: schema } : {});
  const platform = await openPlatform(config, engine === 'postgres' ? { schema } : {});
  const app = await buildModelRegistryApp(platform);
  try {
    const store = new SqlTrackingStore(platform.database, platform.objects);
    const experimentId = await store.createExperiment({ name: 'bench' });
    const random = rng(42);
    const t0 = performance.now();
    const concurrency = engine === 'postgres' ? 8 : 1;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < RUNS) {
          const i = next++;
          const run = await store.createRun({ experimentId, userId: 'bench', runName: `run-${i}`, startTime: 1_700_000_000_000 + i });
          const metrics: Metric[] = [{ key: 'auc', value: 0.5 + random() * 0.5, timestamp: 1_700_000_000_000 + i, step: 10 }];
          for (let k = 1; k < METRICS; k++) metrics.push({ key: `m${k}`, value: random(), timestamp: 1_700_000_000_000 + i, step: 10 });
          await store.logBatch(run.info.run_id, { metrics, params: [{ key: 'model', value: i % 3 ? 'resnet18' : 'densenet121' }] });
        }
      }),
    );
    const loadS = (performance.now() - t0) / 1000;
    console.log(`${engine}: loaded ${RUNS} runs × ${METRICS} metrics in ${loadS.toFixed(1)} s (${Math.round(RUNS / loadS)} runs/s, log-batch through the store)`);
    // Planner statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite) keep them on a live
    // database; without them PostgreSQL guesses 1 row per table right after a bulk load.
    await sql`analyze`.execute(platform.database.db);

    const search = async (body: object) => {
      const t = performance.now();
      const res = await app.inject({ method: 'POST', url: '/api/2.0/mlflow/runs/search', payload: { experiment_ids: [experimentId], max_results: 100, ...body } });
      const elapsed = performance.now() - t;
      if (res.statusCode !== 200) throw new Error(`runs/search answered ${res.statusCode}: ${res.body}`);
      return { elapsed, runs: (res.json() as { runs: unknown[] }).runs.length };
    };
    const cases: [string, (q: number) => object][] = [
      ['filter metrics.auc > x, order_by metrics.auc DESC', (q) => ({ filter: `metrics.auc > ${(0.9 + q * 0.004).toFixed(3)}`, order_by: ['metrics.auc DESC'] })],
      ["filter metric + param, order_by metric", (q) => ({ filter: `metrics.auc > ${(0.8 + q * 0.005).toFixed(3)} and params.model = 'densenet121'`, order_by: ['metrics.m3 ASC'] })],
      ['order_by metrics.auc DESC, no filter (runs without the metric last)', () => ({ order_by: ['metrics.auc DESC'] })],
    ];
    await search({ filter: 'metrics.auc > 0.9', order_by: ['metrics.auc DESC'] }); // warm-up
    for (const [label, body] of cases) {
      const times: number[] = [];
      let rows = 0;
      for (let q = 0; q < QUERIES; q++) {
        const r = await search(body(q));
        times.push(r.elapsed);
        rows = r.runs;
      }
      const p50 = pct(times, 50);
      console.log(`${engine}: runs/search [${label}] p50 ${ms(p50)}, p95 ${ms(pct(times, 95))} (${rows} runs/page; target p50 < 100 ms: ${p50 < 100 ? 'met' : 'MISSED'})`);
    }

    const batchRun = await store.createRun({ experimentId, userId: 'bench' });
    const batchTimes: number[] = [];
    for (let b = 0; b < 10; b++) {
      const metrics = Array.from({ length: 1000 }, (_, i) => ({ key: `batch_${i % 50}`, value: random(), timestamp: 1_700_000_000_000 + b, step: b * 20 + Math.floor(i / 50) }));
      const t = performance.now();
      const res = await app.inject({ method: 'POST', url: '/api/2.0/mlflow/runs/log-batch', payload: { run_id: batchRun.info.run_id, metrics } });
      batchTimes.push(performance.now() - t);
      if (res.statusCode !== 200) throw new Error(`runs/log-batch answered ${res.statusCode}: ${res.body}`);
    }
    const b50 = pct(batchTimes, 50);
    console.log(`${engine}: runs/log-batch of 1000 metrics p50 ${ms(b50)}, max ${ms(Math.max(...batchTimes))} (target < 200 ms: ${b50 < 200 ? 'met' : 'MISSED'})`);
  } finally {
    await app.close();
    await platform.close();
    if (engine === 'postgres') await dropPostgresSchema(POSTGRES_URL, schema);
    rmSync(home, { recursive: true, force: true });
  }
}

console.log(`registry search benchmark: ${RUNS} runs × ${METRICS} metrics, ${QUERIES} queries per case, timed through the HTTP handler (app.inject)`);
for (const engine of engines) {
  if (engine === 'postgres' && !(await reachable(POSTGRES_URL))) {
    console.log(`postgres: SKIPPED — ${POSTGRES_URL} is not reachable`);
    continue;
  }
  await bench(engine as 'sqlite' | 'postgres');
}
