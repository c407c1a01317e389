/**
 * deploy/prometheus and deploy/grafana stay true to the code: the alert rules pass
 * `promtool check rules` (Debian package `prometheus`; skipped with a warning when absent, a
 * failure when CI is set), and every metric the rules and the dashboard reference is exported by
 * one of the five services.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { SERVICE_NAMES } from '../../src/core/config/index.js';
import { SERVICE_BUILDERS } from '../../src/services.js';
import { MONITORING_METRIC_NAMES } from '../../src/monitoring/service/model-metrics.js';
import { embeddings, insertPredictions, labelsWithRate, predictionRecords, probabilities, Rng, startMonitoring, type Harness } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const RULES = path.join(ROOT, 'deploy/prometheus/alerts.yml');
const SCRAPE = path.join(ROOT, 'deploy/prometheus/prometheus.yml');
const DASHBOARD = path.join(ROOT, 'deploy/grafana/xray-dashboard.json');
/** Series Prometheus makes itself rather than scraping them. */
const PROMETHEUS_BUILTIN = new Set(['up']);

const run = promisify(execFile);

async function promtool(): Promise<string | null> {
  try {
    await run('promtool', ['--version']);
    return 'promtool';
  } catch {
    return null;
  }
}

/** Metric names declared in a Prometheus text exposition, with the series names histograms and summaries add. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

/** Metric names used in PromQL expressions: every xray_* identifier, plus Prometheus' own `up`. */
function referencedNames(exprs: string[]): Set<string> {
  const names = new Set<string>();
  for (const e of exprs) {
    for (const m of e.matchAll(/\bxray_[a-z0-9_]+\b/g)) names.add(m[0]);
    if (/\bup\{/.test(e)) names.add('up');
  }
  return names;
}

function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: { targets?: { expr: string }[] }[];
    templating: { list: { definition?: string }[] };
  };
  return [...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dash.templating.list.map((v) => v.definition ?? '')];
}

function ruleExprs(): string[] {
  // The rules file is YAML; the expressions are the `expr:` blocks (single line or `|` block).
  const text = readFileSync(RULES, 'utf8');
  const exprs: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)expr:\s*(.*)$/.exec(lines[i]!);
    if (!m) continue;
    const indent = m[1]!.length;
    const parts = m[2] === '|' ? [] : [m[2]!];
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > indent)) parts.push(lines[++i]!);
    exprs.push(parts.join('\n'));
  }
  return exprs;
}

test('promtool check rules deploy/prometheus/alerts.yml', async (t) => {
  const tool = await promtool();
  if (!tool) {
    if (process.env.CI) assert.fail('promtool is not installed (Debian package `prometheus`); CI must run this check');
    console.warn('\n*** SKIPPED: promtool not found — install the Debian package `prometheus` to check deploy/prometheus/alerts.yml ***\n');
    t.skip('promtool not found (install the Debian package `prometheus`)');
    return;
  }
  const rules = await run(tool, ['check', 'rules', RULES]);
  assert.match(rules.stdout, /SUCCESS: \d+ rules found/);
  const config = await run(tool, ['check', 'config', '--syntax-only', SCRAPE]);
  assert.match(config.stdout, /SUCCESS/);
});

test('the scrape config targets all five services on 8001–8005 /metrics', () => {
  const text = readFileSync(SCRAPE, 'utf8');
  for (const port of [8001, 8002, 8003, 8004, 8005]) assert.match(text, new RegExp(`:${port}'`));
  assert.match(text, /metrics_path: \/metrics/);
  assert.match(text, /- alerts\.yml/);
});

describe('metrics referenced by the rules and the dashboard', () => {
  let monitoring: Harness;
  const apps: FastifyInstance[] = [];
  const exported = new Set<string>();
  let monitoringText = '';

  before(async () => {
    monitoring = await startMonitoring();
    // The other four services on the same platform, as in embedded mode.
    for (const name of SERVICE_NAMES) {
      if (name === 'monitoring') continue;
      apps.push(await SERVICE_BUILDERS[name](monitoring.platform));
    }
    for (const app of apps) {
      const res = await app.inject({ url: '/metrics' });
      assert.equal(res.statusCode, 200);
      for (const n of exportedNames(res.body)) exported.add(n);
    }

    // A few predictions, then a drift check, so the model and drift gauges carry samples.
    const rng = new Rng('deploy');
    const labels = labelsWithRate(rng, 60, 0.4);
    const stats = Array.from({ length: 60 }, () => ({ mean: rng.normal(110, 10), std: rng.normal(60, 5) }));
    await insertPredictions(
      monitoring.platform,
      predictionRecords({ idPrefix: 'd', start: Date.now() - 30_000, stats: stats as never, embeddings: embeddings(rng, labels), probabilities: probabilities(rng, labels) }),
    );
    const ref = await monitoring.app.inject({ method: 'POST', url: '/drift/reference', payload: { model: 'pneumonia', version: '1', window: { first_n: 30 } } });
    assert.equal(ref.statusCode, 201, ref.body);
    const detect = await monitoring.app.inject({ method: 'POST', url: '/drift/detect', payload: { model: 'pneumonia', window: { last_n: 30 }, options: { min_rows: 10 } } });
    assert.equal(detect.statusCode, 200, detect.body);
    monitoringText = (await monitoring.app.inject({ url: '/metrics' })).body;
    for (const n of exportedNames(monitoringText)) exported.add(n);
  });

  after(async () => {
    for (const app of apps) await app.close();
    await monitoring.close();
  });

  test('the monitoring service exports its model, drift and alert metrics with samples', () => {
    for (const name of MONITORING_METRIC_NAMES) assert.ok(exported.has(name), `${name} is not exported`);
    assert.match(monitoringText, /^xray_model_prediction_rate\{[^}]*model="pneumonia"/m);
    assert.match(monitoringText, /^xray_drift_detected\{[^}]*detector="any"[^}]*\} [01]$/m);
    assert.match(monitoringText, /^xray_alerts_open\{/m);
  });

  test('every metric referenced by alerts.yml and the Grafana dashboard is exported', () => {
    const referenced = referencedNames([...ruleExprs(), ...dashboardExprs()]);
    assert.ok(referenced.size >= 15, `only ${referenced.size} metric names found in the rules and dashboard`);
    const missing = [...referenced].filter((n) => !exported.has(n) && !PROMETHEUS_BUILTIN.has(n));
    assert.deepEqual(missing, [], `referenced but not exported: ${missing.join(', ')}`);
    // The check itself notices a name nobody exports.
    assert.ok(!exported.has('xray_model_made_up_total') && referencedNames(['rate(xray_model_made_up_total[5m])']).has('xray_model_made_up_total'));
  });
});
