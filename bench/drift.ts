// Drift benchmark (issue 7 targets): a drift check over 10,000 prediction records — image
// statistics on all of them, MMD on 1,000-record subsamples of the 64-d embeddings with 200
// permutations, the domain classifier, prediction drift — in < 2 s off the request path; and
// recording a prediction in < 0.5 ms of request time (asynchronous, batched writes). SQLite.
// Figures only — nothing here fails on a slow machine.
//   npx tsx bench/drift.ts [--records 10000] [--reference 1000] [--runs 3]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { testConfig } from '../src/core/config/index.js';
import { openPlatform } from '../src/core/platform.js';
import { Rng } from '../src/core/ml/random.js';
import { PredictionRecorder } from '../src/deployment/service/prediction-recorder.js';
import { KyselyPredictionStore, type PredictionRecord, type PredictionStats } from '../src/deployment/store/prediction-store.js';
import { createMonitoringContext } from '../src/monitoring/service/context.js';
import { computeDriftStep, DRIFT_STEPS, type DriftSide } from '../src/monitoring/service/drift-compute.js';
import { driftOptionsFrom } from '../src/monitoring/service/drift-service.js';
import { monitoringSettings } from '../src/monitoring/settings.js';
import { flattenStats } from '../src/monitoring/store/prediction-source.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const RECORDS = Number(arg('records', '10000'));
const REFERENCE = Number(arg('reference', '1000'));
const RUNS = Number(arg('runs', '3'));
const ms = (x: number) => `${x.toFixed(1)} ms`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

function stats(rng: Rng, shift: number): PredictionStats {
  const mean = rng.normal(115 + shift, 12);
  return {
    mean,
    std: rng.normal(60, 6),
    min: Math.max(0, Math.round(rng.normal(2, 2))),
    max: Math.min(255, Math.round(rng.normal(235, 10))),
    p01: Math.max(0, rng.normal(6, 3)),
    p99: Math.min(255, rng.normal(215 + shift / 2, 8)),
    entropy: rng.normal(7.3, 0.15),
    clipLowFrac: Math.abs(rng.normal(0.004, 0.002)),
    clipHighFrac: Math.abs(rng.normal(0.001, 0.001)),
    laplacianVariance: rng.normal(1600, 200),
    edgeDensity: rng.normal(0.25, 0.03),
    sourceFormat: 'png',
    sourceWidth: 1024 + 8 * rng.int(64),
    sourceHeight: 1024 + 8 * rng.int(64),
  };
}

function records(rng: Rng, n: number, start: number, shift: number, prefix: string): PredictionRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const y = rng.next() < 0.4 + shift / 100 ? 1 : 0;
    const probability = 1 / (1 + Math.exp(-(rng.normal() + (y ? 1.25 : -1.25))));
    return {
      id: `${prefix}-${i}`,
      time: start + i,
      modelName: 'pneumonia',
      modelVersion: '1',
      variant: 'default',
      shadow: false,
      probability,
      label: probability >= 0.5 ? 'PNEUMONIA' : 'NORMAL',
      threshold: 0.5,
      imageSha256: `${prefix}${i}`.padStart(64, '0'),
      heatmapMethod: 'cam',
      stats: stats(rng, shift),
      embedding: Array.from({ length: 64 }, (_, k) => Number((rng.normal() + (k < 8 && y ? 0.8 : 0) + (k < 16 ? shift / 100 : 0)).toPrecision(7))),
      latencyMs: 20 + rng.next() * 30,
      requestId: `r-${prefix}-${i}`,
      actor: 'bench',
      cached: false,
    };
  });
}

const home = mkdtempSync(path.join(os.tmpdir(), 'xray-bench-drift-'));
const platform = await openPlatform(testConfig(home, { XRAY_LOG_LEVEL: 'warn' }));
const settings = monitoringSettings({ XRAY_DRIFT_INTERVAL_MIN: 0, XRAY_DRIFT_MAX_WINDOW: Math.max(RECORDS, 50000) });
const ctx = await createMonitoringContext(platform, new Registry(), { settings });
try {
  const rng = new Rng('bench-drift');
  const store = new KyselyPredictionStore(platform.database);
  const t0 = Date.now() - 3_600_000;
  const reference = records(rng, REFERENCE, t0, 0, 'ref');
  const current = records(rng, RECORDS, t0 + 100_000, 5, 'cur');
  let t = performance.now();
  await store.insertMany([...reference, ...current]);
  console.log(`inserted ${REFERENCE + RECORDS} prediction records in ${ms(performance.now() - t)}`);
  const ref = await ctx.drift.createReference('pneumonia', '1', { from: 'predictions', window: { firstN: REFERENCE } }, 'bench');
  console.log(`reference: ${ref.nRows} rows (${ref.nRows <= settings.XRAY_DRIFT_KS_MAX_ROWS ? 'KS' : 'normed Wasserstein'} on image statistics), ${ref.nEmbeddings} embeddings`);

  // End to end: load the window, run every detector in the worker thread, store the report.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  const totals: number[] = [];
  let report;
  for (let i = 0; i < RUNS + 1; i++) {
    if (i === 1) lag.enable();
    report = await ctx.drift.detect({ model: 'pneumonia', version: '1', window: { lastN: RECORDS }, trigger: 'manual', actor: 'bench' });
    if (i > 0) totals.push(report.duration_ms);
    else console.log(`first check (starts the worker threads): ${ms(report.duration_ms)}`);
  }
  lag.disable();
  console.log(`drift check over ${report!.n_current} records (worker threads): median ${ms(median(totals))} of ${RUNS} [${totals.map(ms).join(', ')}] — target < 2000 ms (${(median(totals) / 2000).toFixed(2)}× target)`);
  console.log(`  verdict ${report!.verdict}; drifted: ${report!.drifted_detectors.join(', ') || 'none'}`);
  console.log(`  main-thread event-loop delay during the checks: p99 ${ms(lag.percentile(99) / 1e6)}, max ${ms(lag.max / 1e6)}`);

  // Where the time goes (inline, same data).
  t = performance.now();
  const window = await ctx.predictions.window({ model: 'pneumonia', version: '1', lastN: RECORDS, limit: RECORDS, embeddingSample: 1000, seed: 'b' });
  const load = performance.now() - t;
  const refData = { stats: reference.map((r) => flattenStats(r.stats)), embeddings: reference.map((r) => r.embedding!), probabilities: reference.map((r) => r.probability), threshold: 0.5 };
  const cur: DriftSide = { stats: window.stats, embeddings: window.embeddings, probabilities: window.probabilities, threshold: 0.5 };
  const options = driftOptionsFrom(settings);
  const parts: string[] = [`load window ${ms(load)}`];
  for (const step of DRIFT_STEPS) {
    t = performance.now();
    computeDriftStep(step, refData, cur, options, 'b');
    parts.push(`${step} ${ms(performance.now() - t)}`);
  }
  console.log(`  breakdown, inline on one thread: ${parts.join('; ')}`);
  console.log(`  (the worker pool runs embedding_mmd and embedding_classifier on separate threads: ${ctx.runner.mode})`);

  // Recording a prediction: the deployment service's recorder (buffered, batched writes).
  const recorder = new PredictionRecorder(store);
  const extra = records(rng, 10_000, Date.now(), 0, 'rec');
  t = performance.now();
  for (const r of extra) recorder.record(r);
  const perCall = (performance.now() - t) / extra.length;
  t = performance.now();
  await recorder.flush();
  const flush = performance.now() - t;
  console.log(
    `recording a prediction: ${(perCall * 1000).toFixed(2)} µs per record() on the request path — target < 0.5 ms (${(perCall / 0.5).toFixed(4)}× target); ` +
      `writes batched off the path: ${extra.length} records stored in ${ms(flush)} (${((extra.length / flush) * 1000).toFixed(0)} rows/s)`,
  );
} finally {
  await ctx.close();
  await platform.close();
  rmSync(home, { recursive: true, force: true });
}
