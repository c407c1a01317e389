/**
 * The monitoring service end to end over HTTP (app.inject): shifted predictions → drift check →
 * alerts → webhook / Alertmanager / e-mail notifications on loopback receivers; a failing
 * receiver → retries → dead letter; feedback → performance drift; audit trail; metrics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import {
  embeddings,
  insertPredictions,
  labelsWithRate,
  predictionRecords,
  probabilities,
  renderedStats,
  Rng,
  startMonitoring,
  startReceiver,
  startSmtpSink,
  waitFor,
  type Harness,
  type Receiver,
  type SmtpSink,
} from './helpers.js';

const N = 120;
const HOUR = 3_600_000;

describe('monitoring service API', () => {
  let h: Harness;
  let slack: Receiver;
  let failing: Receiver;
  let smtp: SmtpSink;
  const now = Date.now();
  const refStart = now - 3 * HOUR;
  const quietStart = now - 2 * HOUR;
  const shiftedStart = now - 60_000;

  before(async () => {
    [h, slack, failing, smtp] = await Promise.all([startMonitoring(), startReceiver(200), startReceiver(500), startSmtpSink()]);
    const rng = new Rng('api');
    const normalStats = renderedStats(0, 40);
    const newStats = renderedStats(1000, 40);
    const invertedStats = renderedStats(1000, 40, { invert: true });
    const refLabels = labelsWithRate(rng, N, 0.35);
    const quietLabels = labelsWithRate(rng, N, 0.35);
    const shiftedLabels = labelsWithRate(rng, N, 0.75);
    await insertPredictions(h.platform, [
      ...predictionRecords({ idPrefix: 'ref', start: refStart, stats: normalStats, embeddings: embeddings(rng, refLabels), probabilities: probabilities(rng, refLabels) }),
      ...predictionRecords({ idPrefix: 'quiet', start: quietStart, stats: newStats, embeddings: embeddings(rng, quietLabels), probabilities: probabilities(rng, quietLabels) }),
      ...predictionRecords({
        idPrefix: 'shift',
        start: shiftedStart,
        stats: invertedStats,
        embeddings: embeddings(rng, shiftedLabels, 0.4),
        probabilities: probabilities(rng, shiftedLabels),
      }),
    ]);
  });

  after(async () => {
    await h.close();
    await Promise.all([slack.close(), failing.close(), smtp.close()]);
  });

  test('channels: webhook (Slack), webhook (Alertmanager, failing, 3 quick retries), e-mail; secrets redacted', async () => {
    const add = (payload: Record<string, unknown>) => h.app.inject({ method: 'POST', url: '/alerts/channels', payload });
    const a = await add({ name: 'slack', kind: 'webhook', url: slack.url, headers: { authorization: 'Bearer secret' } });
    assert.equal(a.statusCode, 201, a.body);
    const b = await add({ name: 'am', kind: 'webhook', url: failing.url, format: 'alertmanager', retry: { attempts: 3, initial_delay_ms: 5, max_delay_ms: 20 } });
    assert.equal(b.statusCode, 201, b.body);
    const c = await add({ name: 'mail', kind: 'email', smtp_url: smtp.url, from: 'xray@localhost', to: ['oncall@hospital.test'] });
    assert.equal(c.statusCode, 201, c.body);
    assert.equal((await add({ name: 'slack', kind: 'webhook', url: slack.url })).statusCode, 409);
    assert.equal((await add({ name: 'bad', kind: 'webhook', url: 'ftp://x' })).statusCode, 400);
    const list = (await h.app.inject({ url: '/alerts/channels' })).json();
    assert.deepEqual(list.items.map((x: { name: string }) => x.name), ['slack', 'am', 'mail']);
    assert.equal(list.items[0].settings.headers.authorization, '***');
  });

  test('reference from prediction records', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/drift/reference',
      payload: { model: 'pneumonia', version: '1', window: { since: refStart, until: refStart + N * 10 } },
    });
    assert.equal(res.statusCode, 201, res.body);
    const ref = res.json();
    assert.equal(ref.source, 'predictions');
    assert.equal(ref.n_rows, N);
    assert.equal(ref.n_embeddings, N);
    assert.ok(ref.features.includes('mean') && ref.features.includes('entropy'));
    assert.ok(ref.summary.positive_rate > 0.2 && ref.summary.positive_rate < 0.6 && ref.summary.threshold === 0.5);
  });

  test('same-distribution window: no drift, no alert', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/drift/detect',
      payload: { model: 'pneumonia', window: { since: quietStart, until: quietStart + HOUR } },
    });
    assert.equal(res.statusCode, 200, res.body);
    const r = res.json();
    assert.equal(r.version, '1');
    assert.equal(r.n_current, N);
    assert.equal(r.n_reference, N);
    assert.equal(r.verdict, 'no_drift', JSON.stringify(r.checks));
    const alerts = (await h.app.inject({ url: '/alerts?status=active' })).json();
    assert.equal(alerts.items.length, 0);
  });

  let driftReportId = '';
  test('shifted window (inverted images, shifted embeddings, more positives) → drift report → alerts → notifications', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/drift/detect', payload: { model: 'pneumonia', version: 1, window: { since: new Date(shiftedStart).toISOString() } } });
    assert.equal(res.statusCode, 200, res.body);
    const r = res.json();
    driftReportId = r.id;
    assert.equal(r.verdict, 'drift');
    for (const d of ['data', 'embedding_mmd', 'prediction_positive_rate']) assert.ok(r.drifted_detectors.includes(d), `${d} in ${r.drifted_detectors}`);
    const data = r.checks.find((c: { detector: string }) => c.detector === 'data');
    assert.ok(data.statistic >= 0.5 && data.rule.includes('share'));
    assert.ok(r.features.find((f: { feature: string }) => f.feature === 'mean').drifted);
    const perf = r.checks.find((c: { detector: string }) => c.detector === 'performance');
    assert.match(perf.skipped, /labelled predictions/);

    const stored = (await h.app.inject({ url: `/drift/reports/${r.id}` })).json();
    assert.deepEqual(stored, r);
    const listed = (await h.app.inject({ url: '/drift/reports?model=pneumonia&verdict=drift' })).json();
    assert.deepEqual(listed.items.map((x: { id: string }) => x.id), [r.id]);

    const alerts = (await h.app.inject({ url: '/alerts?status=open' })).json().items;
    const rules = alerts.map((a: { rule: string }) => a.rule).sort();
    assert.deepEqual(rules, ['data_drift', 'embedding_drift', 'prediction_drift']);
    assert.ok(alerts.every((a: { severity: string; details: { report_id: string } }) => a.severity === 'warning' && a.details.report_id === r.id));

    // Slack-compatible webhook: one message per alert.
    await waitFor(() => slack.received.length >= 3, 5000, 'three Slack messages');
    for (const m of slack.received) {
      const body = m.body as { text: string; blocks: unknown[] };
      assert.match(body.text, /^\[FIRING\] \[warning\] (data|embedding|prediction)_drift on pneumonia v1/);
      assert.ok(Array.isArray(body.blocks) && body.blocks.length === 3);
      assert.equal(m.headers.authorization, 'Bearer secret');
    }
    // E-mail through the SMTP sink.
    await waitFor(() => smtp.messages.length >= 3, 5000, 'three e-mails');
    assert.deepEqual(smtp.messages[0]!.to, ['oncall@hospital.test']);
    assert.match(smtp.messages[0]!.raw, /Subject: \[FIRING\] \[warning\]/);
  });

  test('failing receiver: every attempt retried, then one dead letter per alert', async () => {
    const dead = await waitFor(
      async () => {
        const items = (await h.app.inject({ url: '/alerts/dead-letters' })).json().items;
        return items.length >= 3 ? items : null;
      },
      8000,
      'three dead letters',
    );
    assert.equal(failing.received.length, 9, '3 alerts × 3 attempts');
    for (const d of dead) {
      assert.equal(d.channel_name, 'am');
      assert.equal(d.attempts, 3);
      assert.match(d.last_error, /HTTP 500/);
      assert.equal(d.payload.version, '4');
      assert.equal(d.payload.status, 'firing');
      assert.equal(d.payload.alerts[0].labels.model, 'pneumonia');
      assert.equal(d.payload.alerts[0].endsAt, '0001-01-01T00:00:00Z');
    }
    const body = failing.received[0]!.body as { alerts: { labels: { alertname: string; severity: string } }[] };
    assert.ok(['data_drift', 'embedding_drift', 'prediction_drift'].includes(body.alerts[0]!.labels.alertname));
  });

  test('repeated drift is de-duplicated: occurrences grow, no new notification', async () => {
    const before = slack.received.length;
    const res = await h.app.inject({ method: 'POST', url: '/drift/detect', payload: { model: 'pneumonia', window: { last_n: N } } });
    assert.equal(res.json().verdict, 'drift');
    const alerts = (await h.app.inject({ url: '/alerts?status=active' })).json().items;
    assert.equal(alerts.length, 3);
    assert.ok(alerts.every((a: { occurrences: number }) => a.occurrences === 2));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(slack.received.length, before);
  });

  test('acknowledge and resolve', async () => {
    const alerts = (await h.app.inject({ url: '/alerts?status=open&rule=prediction_drift' })).json().items;
    assert.equal(alerts.length, 1);
    const id = alerts[0].id;
    const ack = await h.app.inject({ method: 'POST', url: `/alerts/${id}/ack` });
    assert.equal(ack.statusCode, 200);
    assert.equal(ack.json().status, 'acknowledged');
    assert.equal(ack.json().acknowledged_by, 'local-admin');
    const resolved = await h.app.inject({ method: 'POST', url: `/alerts/${id}/resolve` });
    assert.equal(resolved.json().status, 'resolved');
    assert.equal((await h.app.inject({ method: 'POST', url: `/alerts/${id}/resolve` })).statusCode, 409);
    assert.equal((await h.app.inject({ method: 'POST', url: `/alerts/${id}/ack` })).statusCode, 409);
    assert.equal((await h.app.inject({ method: 'POST', url: '/alerts/nope/ack' })).statusCode, 404);
    await waitFor(() => slack.received.some((m) => (m.body as { text: string }).text.startsWith('[RESOLVED]')), 5000, 'a RESOLVED message');
  });

  test('the condition clearing resolves the remaining drift alerts', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/drift/detect', payload: { model: 'pneumonia', window: { since: quietStart, until: quietStart + HOUR } } });
    assert.equal(res.json().verdict, 'no_drift');
    const active = (await h.app.inject({ url: '/alerts?status=active' })).json().items;
    assert.equal(active.length, 0);
    const resolved = (await h.app.inject({ url: '/alerts?status=resolved' })).json().items;
    assert.ok(resolved.filter((a: { resolved_by: string }) => a.resolved_by === 'monitoring').length === 2);
  });

  test('feedback: labels → rolling performance → performance drift (critical)', async () => {
    // A labelled reference (AUC ≈ 0.9) for version 2, and a current window whose labels are coin flips.
    const rng = new Rng('perf');
    const refLabels = labelsWithRate(rng, 200, 0.5);
    const reference = {
      stats: renderedStats(0, 10),
      embeddings: embeddings(rng, refLabels),
      probabilities: probabilities(rng, refLabels),
      labels: refLabels.map((y) => (y ? 'PNEUMONIA' : 'NORMAL')),
      threshold: 0.5,
    };
    const ref = await h.app.inject({ method: 'POST', url: '/drift/reference', payload: { model: 'pneumonia', version: '2', reference } });
    assert.equal(ref.statusCode, 201, ref.body);
    assert.equal(ref.json().source, 'rows');
    assert.ok(ref.json().summary.auc > 0.8);

    const curLabels = labelsWithRate(rng, 60, 0.5);
    const records = predictionRecords({
      idPrefix: 'v2',
      version: '2',
      start: now - 30 * 60_000,
      stats: renderedStats(0, 10),
      embeddings: embeddings(rng, curLabels),
      probabilities: probabilities(rng, curLabels),
    });
    await insertPredictions(h.platform, records);
    for (const r of records) {
      const label = new Rng(r.id).next() < 0.5 ? 'PNEUMONIA' : 0;
      const res = await h.app.inject({ method: 'POST', url: '/feedback', payload: { prediction_id: r.id, label } });
      assert.equal(res.statusCode, 201, res.body);
    }
    const again = await h.app.inject({ method: 'POST', url: '/feedback', payload: { prediction_id: records[0]!.id, label: 1 } });
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().replaced, true);
    assert.equal((await h.app.inject({ method: 'POST', url: '/feedback', payload: { prediction_id: 'missing', label: 1 } })).statusCode, 404);
    assert.equal((await h.app.inject({ method: 'POST', url: '/feedback', payload: { prediction_id: 'x', label: 2 } })).statusCode, 400);

    const perf = (await h.app.inject({ url: '/performance?model=pneumonia&version=2' })).json();
    assert.equal(perf.n, 60);
    assert.ok(perf.auc < 0.75 && perf.sensitivity !== null && perf.specificity !== null, JSON.stringify(perf));

    const report = (await h.app.inject({ method: 'POST', url: '/drift/detect', payload: { model: 'pneumonia', version: '2', window: { last_n: 60 } } })).json();
    const check = report.checks.find((c: { detector: string }) => c.detector === 'performance');
    assert.equal(check.drifted, true, JSON.stringify(check));
    assert.ok(check.threshold > 0.75 && check.details.reference_auc > 0.8);
    const alert = (await h.app.inject({ url: '/alerts?rule=performance_drift' })).json().items[0];
    assert.equal(alert.severity, 'critical');
    assert.equal(alert.version, '2');
  });

  test('input errors', async () => {
    const post = (payload: unknown) => h.app.inject({ method: 'POST', url: '/drift/detect', payload: payload as Record<string, unknown> });
    assert.equal((await post({ model: 'pneumonia', window: { last_n: 5, since: 1 } })).statusCode, 400);
    assert.equal((await post({ model: 'pneumonia', window: { since: 'yesterday' } })).statusCode, 400);
    assert.equal((await post({ model: 'unknown-model' })).statusCode, 404);
    assert.equal((await post({ model: 'pneumonia', reference_id: '00000000-0000-4000-8000-000000000000' })).statusCode, 404);
    const badRef = await h.app.inject({ method: 'POST', url: '/drift/reference', payload: { model: 'm', version: '1', reference: { embeddings: [[1, 2], [1]] } } });
    assert.equal(badRef.statusCode, 400);
    assert.match(badRef.json().error.message, /embeddings\[1\]/);
    assert.equal((await h.app.inject({ url: '/drift/reports/nope' })).statusCode, 404);
    assert.equal((await h.app.inject({ url: '/drift/reports?page_token=garbage' })).statusCode, 400);
  });

  test('a model version without reference and too few predictions: insufficient_data', async () => {
    await insertPredictions(
      h.platform,
      predictionRecords({ idPrefix: 'v3', version: '3', start: now - 10_000, stats: renderedStats(0, 2), embeddings: [], probabilities: [0.2, 0.7, 0.9] }),
    );
    const r = (await h.app.inject({ method: 'POST', url: '/drift/detect', payload: { model: 'pneumonia', version: '3' } })).json();
    assert.equal(r.verdict, 'insufficient_data');
    assert.match(r.checks[0].skipped, /automatic reference needs its first 1000 predictions \(has 3\)/);
  });

  test('/metrics: model gauges, drift gauges, open alerts', async () => {
    const text = (await h.app.inject({ url: '/metrics' })).body;
    assert.match(text, /xray_model_prediction_rate\{[^}]*model="pneumonia",version="1",variant="default"[^}]*\} 0\.4/);
    assert.match(text, /xray_model_positive_rate\{[^}]*version="1"/);
    assert.match(text, /xray_model_latency_seconds\{[^}]*quantile="0\.99"[^}]*\} 0\.02/);
    assert.match(text, /xray_drift_detected\{[^}]*version="1",detector="data"[^}]*\} 0/);
    assert.match(text, /xray_drift_detected\{[^}]*version="2",detector="performance"[^}]*\} 1/);
    assert.match(text, /xray_drift_score\{[^}]*detector="embedding_mmd"/);
    assert.match(text, /xray_alerts_open\{[^}]*severity="critical",status="open"[^}]*\} 1/);
    assert.match(text, /xray_model_auc\{[^}]*version="2"/);
    assert.match(text, /xray_drift_checks_total\{[^}]*verdict="drift",trigger="manual"[^}]*\} \d/);
    assert.match(text, /xray_alert_notifications_total\{[^}]*kind="webhook",outcome="dead_letter"[^}]*\} [3-9]/);
  });

  test('audit trail: records, filters, paging, and a tampered row is found', async () => {
    await h.platform.audit.flush();
    const checks = (await h.app.inject({ url: '/audit?action=drift.check&page_size=2' })).json();
    assert.equal(checks.items.length, 2);
    assert.ok(checks.next_page_token);
    assert.ok(checks.items.every((r: { action: string; service: string }) => r.action === 'drift.check' && r.service === 'monitoring'));
    const next = (await h.app.inject({ url: `/audit?action=drift.check&page_size=2&page_token=${checks.next_page_token}` })).json();
    assert.ok(next.items[0].seq < checks.items[1].seq);
    const byActor = (await h.app.inject({ url: `/audit?actor=local-admin&since=${new Date(now - HOUR).toISOString()}` })).json();
    assert.ok(byActor.items.some((r: { action: string }) => r.action === 'prediction.feedback'));
    assert.ok(byActor.items.every((r: { actor: string }) => r.actor === 'local-admin'));
    assert.equal((await h.app.inject({ url: '/audit?until=later' })).statusCode, 400);

    const ok = (await h.app.inject({ url: '/audit/verify' })).json();
    assert.equal(ok.ok, true);
    assert.ok(ok.checked > 10);
    const target = checks.items[1].seq;
    await sql`update audit_log set details = ${'{"verdict":"no_drift"}'} where seq = ${target}`.execute(h.platform.database.db);
    const broken = (await h.app.inject({ url: '/audit/verify' })).json();
    assert.equal(broken.ok, false);
    assert.equal(broken.first_broken_seq, target);
    assert.match(broken.reason, /content/);
  });

  test('drift report id is stable and listed by model', async () => {
    const all = (await h.app.inject({ url: '/drift/reports?model=pneumonia&page_size=1' })).json();
    assert.equal(all.items.length, 1);
    assert.ok(all.next_page_token);
    assert.ok(driftReportId);
  });
});
