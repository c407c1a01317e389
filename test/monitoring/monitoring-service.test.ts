/**
 * Monitoring services without HTTP: the worker-thread runner, the automatic and registry-shipped
 * references, the drift schedule, and the traffic alert rules.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { testConfig } from '../../src/core/config/index.js';
import { TOPICS } from '../../src/core/events/index.js';
import { putContentAddressed } from '../../src/core/objects/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { SqlRegistryStore } from '../../src/model-registry/store/sql-registry-store.js';
import { createMonitoringContext, type MonitoringContext } from '../../src/monitoring/service/context.js';
import { InlineDriftRunner, WorkerDriftRunner } from '../../src/monitoring/service/drift-runner.js';
import { driftOptionsFrom } from '../../src/monitoring/service/drift-service.js';
import { monitoringSettings } from '../../src/monitoring/settings.js';
import { flattenStats } from '../../src/monitoring/store/prediction-source.js';
import { embeddings, insertPredictions, labelsWithRate, predictionRecords, probabilities, renderedStats, Rng, waitFor } from './helpers.js';
import { provideLocalClients } from '../helpers/service-harness.js';

const SETTINGS = monitoringSettings({
  XRAY_DRIFT_INTERVAL_MIN: 0,
  XRAY_DRIFT_REFERENCE_SIZE: 50,
  XRAY_DRIFT_MIN_ROWS: 20,
  XRAY_DRIFT_MMD_PERMUTATIONS: 50,
  XRAY_ALERT_MIN_COUNT: 20,
  XRAY_ALERT_LATENCY_P95_MS: 500,
  XRAY_METRICS_WINDOW_S: 60,
});

test('the worker-thread runner gives the inline result and leaves the event loop free', async () => {
  const rng = new Rng('runner');
  const labels = labelsWithRate(rng, 300, 0.4);
  const stats = renderedStats(0, 20).map((s) => flattenStats(s));
  const ref = { stats, embeddings: embeddings(rng, labels), probabilities: probabilities(rng, labels), threshold: 0.5 };
  const cur = { stats, embeddings: embeddings(rng, labels, 0.2), probabilities: probabilities(rng, labels), threshold: 0.5 };
  const options = { ...driftOptionsFrom(SETTINGS), mmdPermutations: 200 };
  const worker = new WorkerDriftRunner({ threads: 2 });
  try {
    let ticked = false;
    const timer = setTimeout(() => (ticked = true), 1);
    const viaWorker = await worker.run(ref, cur, options, 'seed');
    clearTimeout(timer);
    assert.equal(worker.fellBack, false, 'the worker thread started');
    assert.ok(ticked, 'a timer fired while the worker computed');
    const inline = await new InlineDriftRunner().run(ref, cur, options, 'seed');
    assert.deepEqual(viaWorker, inline);
    // A second run reuses the same workers.
    assert.deepEqual(await worker.run(ref, cur, options, 'seed'), inline);
    // Errors cross the thread boundary as AppErrors.
    await assert.rejects(worker.run({ ...ref, stats: [] }, cur, { ...options, features: ['nope'] }, 'x'), (e: Error & { code?: string }) => e.code === 'INVALID_INPUT');
  } finally {
    await worker.close();
  }
});

describe('monitoring context', () => {
  let home: string;
  let platform: Platform;
  let ctx: MonitoringContext;
  const now = Date.now();

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-monitoring-svc-'));
    platform = await openPlatform(testConfig(home));
    provideLocalClients(platform);
    ctx = await createMonitoringContext(platform, new Registry(), { settings: SETTINGS });
  });

  after(async () => {
    await ctx.close();
    await platform.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('automatic reference: the first N predictions, excluded from the current window', async () => {
    const rng = new Rng('auto');
    const labels = labelsWithRate(rng, 110, 0.4);
    await insertPredictions(
      platform,
      predictionRecords({ idPrefix: 'auto', model: 'auto-model', start: now - 3_600_000, stats: renderedStats(0, 20), embeddings: embeddings(rng, labels), probabilities: probabilities(rng, labels) }),
    );
    const report = await ctx.drift.detect({ model: 'auto-model', window: {}, trigger: 'manual', actor: 'tester' });
    assert.equal(report.n_reference, 50);
    assert.equal(report.n_current, 60);
    assert.equal(report.options.reference_policy, 'auto');
    assert.equal(report.verdict, 'no_drift', JSON.stringify(report.checks.filter((c) => c.drifted)));
    const ref = await ctx.drift.reference(report.reference_id!);
    assert.equal(ref.source, 'auto');
    assert.ok(report.observed.first! > ref.windowUntil!);
    // The second check reuses it.
    const again = await ctx.drift.detect({ model: 'auto-model', window: { lastN: 30 }, trigger: 'manual', actor: 'tester' });
    assert.equal(again.reference_id, report.reference_id);
  });

  test('registry-shipped reference.json is imported when the version is registered', async () => {
    const registry = new SqlRegistryStore(platform.database);
    await registry.createRegisteredModel({ name: 'shipped', userId: 'tester' });
    const rng = new Rng('shipped');
    const labels = labelsWithRate(rng, 80, 0.5);
    const doc = { stats: renderedStats(0, 30), embeddings: embeddings(rng, labels), probabilities: probabilities(rng, labels), labels, threshold: 0.5 };
    const stored = await putContentAddressed(platform.objects, 'registry', Buffer.from(JSON.stringify(doc)), '.json', 'application/json');
    const version = await registry.createModelVersion({
      name: 'shipped',
      userId: 'tester',
      source: 'test',
      artifacts: [{ path: 'reference.json', object_key: stored.key, sha256: stored.sha256, size: 1, content_type: 'application/json' }],
    });
    await platform.events.publish(TOPICS.modelRegistered, { name: 'shipped', version: version.version });
    const refs = await waitFor(async () => {
      const page = await ctx.drift.references({ model: 'shipped' });
      return page.items.length ? page.items : null;
    }, 5000, 'the imported reference');
    assert.equal(refs[0]!.source, 'registry');
    assert.equal(refs[0]!.version, String(version.version));
    assert.equal(refs[0]!.nRows, 30);
    assert.ok(refs[0]!.summary.auc! > 0.8);
    // A second event does not import it twice.
    await platform.events.publish(TOPICS.modelStageChanged, { name: 'shipped', version: version.version, to_stage: 'Production' });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await ctx.drift.references({ model: 'shipped' })).items.length, 1);
  });

  test('the schedule checks every version with new predictions; too-small windows leave no report', async () => {
    const rng = new Rng('sched');
    const labels = labelsWithRate(rng, 40, 0.4);
    const start = Date.now() - 5_000;
    await insertPredictions(
      platform,
      predictionRecords({ idPrefix: 'sched', model: 'auto-model', start, stepMs: 1, stats: renderedStats(0, 20), embeddings: embeddings(rng, labels), probabilities: probabilities(rng, labels) }),
    );
    await insertPredictions(platform, predictionRecords({ idPrefix: 'tiny', model: 'tiny-model', start, stats: [], embeddings: [], probabilities: [0.1, 0.9] }));
    await ctx.scheduler.runOnce({ since: start });
    const scheduled = (await ctx.drift.reports({ model: 'auto-model' })).items.filter((r) => r.trigger === 'schedule');
    assert.equal(scheduled.length, 1);
    assert.ok(scheduled[0]!.n_current >= 40);
    assert.equal((await ctx.drift.reports({ model: 'tiny-model' })).items.length, 0);
  });

  test('traffic rules: latency, positive-rate jump and error rate raise alerts, then clear', async () => {
    const t = Date.now();
    const windowMs = SETTINGS.XRAY_METRICS_WINDOW_S * 1000;
    const rng = new Rng('traffic');
    // Previous window: 10 % positives, fast. Current window: 80 % positives, slow.
    await insertPredictions(platform, [
      ...predictionRecords({ idPrefix: 'prev', model: 'live', start: t - windowMs - 40_000, stepMs: 500, stats: [], embeddings: [], probabilities: Array.from({ length: 40 }, (_, i) => (i % 10 === 0 ? 0.9 : 0.1)) }),
      ...predictionRecords({ idPrefix: 'cur', model: 'live', start: t - 30_000, stepMs: 500, stats: [], embeddings: [], probabilities: Array.from({ length: 40 }, () => (rng.next() < 0.8 ? 0.9 : 0.1)), latencyMs: 900 }),
    ]);
    for (let i = 0; i < 30; i++) {
      platform.audit.record({ actor: 'x', action: 'prediction.create', resource: `prediction:${i}`, outcome: i < 10 ? 'failure' : 'success', service: 'deployment' });
    }
    await platform.audit.flush();
    const results = await ctx.evaluateRules(Date.now());
    const firing = results.filter((r) => r.firing && (r.model === 'live' || r.model === '*')).map((r) => r.rule).sort();
    assert.deepEqual(firing, ['error_rate_high', 'latency_high', 'positive_rate_jump']);
    const open = (await ctx.alerts.list({ status: 'open' })).items;
    assert.equal(open.find((a) => a.rule === 'error_rate_high')!.severity, 'critical');
    assert.match(open.find((a) => a.rule === 'latency_high')!.summary, /p95 latency of live v1 is 900 ms/);

    // Later: the slow window has passed and only fast, steady traffic remains → latency alert clears.
    const later = t + 2 * windowMs;
    await insertPredictions(platform, predictionRecords({ idPrefix: 'calm', model: 'live', start: later - 30_000, stepMs: 500, stats: [], embeddings: [], probabilities: Array.from({ length: 40 }, () => 0.1) }));
    await ctx.evaluateRules(later);
    const latency = (await ctx.alerts.list({ rule: 'latency_high' })).items[0]!;
    assert.equal(latency.status, 'resolved');
    assert.equal(latency.resolvedBy, 'monitoring');
  });
});
