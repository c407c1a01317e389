/** Notification delivery (backoff, retries, dead letters on shutdown), settings and reference parsing. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { testConfig } from '../../src/core/config/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { backoffDelay, NotificationDispatcher, type Senders } from '../../src/monitoring/notify/dispatcher.js';
import { alertmanagerPayload, slackPayload } from '../../src/monitoring/notify/payloads.js';
import { alertFingerprint } from '../../src/monitoring/service/alert-service.js';
import { parseReferenceDocument, REFERENCE_MAX_EMBEDDINGS, summariseReference } from '../../src/monitoring/service/reference-data.js';
import { envChannels } from '../../src/monitoring/service/context.js';
import { loadMonitoringSettings } from '../../src/monitoring/settings.js';
import { SqlAlertStore } from '../../src/monitoring/store/alert-store.js';
import type { Alert, WebhookSettings } from '../../src/monitoring/store/types.js';

test('exponential backoff is capped', () => {
  const policy = { attempts: 6, initialDelayMs: 100, maxDelayMs: 1000 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(policy, a)), [100, 200, 400, 800, 1000, 1000]);
});

test('alert fingerprints: one per rule, model and version', () => {
  assert.equal(alertFingerprint('data_drift', 'pneumonia', '1'), alertFingerprint('data_drift', 'pneumonia', '1'));
  assert.notEqual(alertFingerprint('data_drift', 'pneumonia', '1'), alertFingerprint('data_drift', 'pneumonia', '2'));
  assert.notEqual(alertFingerprint('data_drift', 'pneumonia', '1'), alertFingerprint('prediction_drift', 'pneumonia', '1'));
});

const ALERT: Alert = {
  id: 'a1',
  fingerprint: 'f',
  rule: 'data_drift',
  model: 'pneumonia',
  version: '3',
  severity: 'warning',
  status: 'open',
  summary: 'Drift in image statistics',
  details: { report_id: 'r' },
  occurrences: 1,
  firstSeen: Date.UTC(2025, 0, 1),
  lastSeen: Date.UTC(2025, 0, 1),
  acknowledgedBy: null,
  acknowledgedAt: null,
  resolvedBy: null,
  resolvedAt: null,
};

test('payload formats: Slack {text, blocks}; Alertmanager webhook v4', () => {
  const slack = slackPayload({ event: 'firing', alert: ALERT, url: 'http://m/alerts/a1' });
  assert.equal(slack.text, '[FIRING] [warning] data_drift on pneumonia v3: Drift in image statistics');
  assert.equal(slack.blocks.length, 3);
  const am = alertmanagerPayload({ event: 'resolved', alert: { ...ALERT, status: 'resolved', resolvedAt: Date.UTC(2025, 0, 2) }, url: 'http://m/alerts/a1' }, 'ops') as {
    status: string;
    receiver: string;
    externalURL: string;
    alerts: { status: string; labels: Record<string, string>; startsAt: string; endsAt: string }[];
  };
  assert.equal(am.status, 'resolved');
  assert.equal(am.receiver, 'ops');
  assert.equal(am.externalURL, 'http://m');
  assert.deepEqual(am.alerts[0]!.labels, { alertname: 'data_drift', severity: 'warning', model: 'pneumonia', version: '3', service: 'monitoring' });
  assert.equal(am.alerts[0]!.startsAt, '2025-01-01T00:00:00.000Z');
  assert.equal(am.alerts[0]!.endsAt, '2025-01-02T00:00:00.000Z');
});

describe('dispatcher', () => {
  let home: string;
  let platform: Platform;
  let store: SqlAlertStore;

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-notify-'));
    platform = await openPlatform(testConfig(home));
    store = new SqlAlertStore(platform.database);
  });
  after(async () => {
    await platform.close();
    rmSync(home, { recursive: true, force: true });
  });

  const webhookChannel = (id: string, minSeverity: 'info' | 'warning' | 'critical', retry: WebhookSettings['retry']) => ({
    id,
    name: id,
    kind: 'webhook' as const,
    minSeverity,
    enabled: true,
    createdBy: 't',
    createdAt: 0,
    fromEnv: true,
    settings: { url: 'http://127.0.0.1:9/x', format: 'slack' as const, retry },
  });

  test('a delivery that fails twice then succeeds is retried, not dead-lettered; severity filters channels', async () => {
    let calls = 0;
    const senders: Senders = {
      async webhook() {
        calls++;
        if (calls < 3) throw new Error(`attempt ${calls} failed`);
      },
      async email() {
        throw new Error('not used');
      },
    };
    const outcomes: string[] = [];
    const d = new NotificationDispatcher({
      store,
      envChannels: [webhookChannel('flaky', 'warning', { attempts: 5, initialDelayMs: 1, maxDelayMs: 5 }), webhookChannel('critical-only', 'critical', undefined)],
      defaultRetry: { attempts: 3, initialDelayMs: 1, maxDelayMs: 5 },
      baseUrl: 'http://m',
      senders,
      onAttempt: (_kind, outcome) => outcomes.push(outcome),
    });
    assert.equal(await d.notify(ALERT, 'firing'), 1, 'the critical-only channel is skipped for a warning');
    await d.idle();
    assert.equal(calls, 3);
    assert.deepEqual(outcomes, ['failed', 'failed', 'delivered']);
    assert.equal((await store.listDeadLetters()).items.length, 0);
    await d.close();
  });

  test('stopping while a retry waits turns it into a dead letter', async () => {
    const d = new NotificationDispatcher({
      store,
      envChannels: [webhookChannel('down', 'info', { attempts: 5, initialDelayMs: 60_000, maxDelayMs: 60_000 })],
      defaultRetry: { attempts: 3, initialDelayMs: 1, maxDelayMs: 5 },
      baseUrl: 'http://m',
      senders: {
        async webhook() {
          throw new Error('HTTP 503');
        },
        async email() {},
      },
    });
    await d.notify(ALERT, 'firing');
    await new Promise((r) => setTimeout(r, 50));
    await d.close();
    const dead = (await store.listDeadLetters()).items;
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.attempts, 1);
    assert.equal(dead[0]!.channelId, null);
    assert.match(dead[0]!.lastError, /HTTP 503; service stopped before the next retry/);
    assert.equal(await d.notify(ALERT, 'firing'), 0, 'a closed dispatcher sends nothing');
  });
});

describe('settings', () => {
  test('defaults follow Evidently and Alibi Detect', () => {
    const s = loadMonitoringSettings({});
    assert.equal(s.XRAY_DRIFT_KS_MAX_ROWS, 1000);
    assert.equal(s.XRAY_DRIFT_WASSERSTEIN, 0.1);
    assert.equal(s.XRAY_DRIFT_SHARE, 0.5);
    assert.equal(s.XRAY_DRIFT_CLASSIFIER_AUC, 0.55);
    assert.equal(s.XRAY_DRIFT_MMD_PERMUTATIONS, 200);
  });

  test('a bad value names the variable', () => {
    assert.throws(() => loadMonitoringSettings({ XRAY_DRIFT_KS_ALPHA: '2' }), /XRAY_DRIFT_KS_ALPHA/);
    assert.throws(() => loadMonitoringSettings({ XRAY_ALERT_WEBHOOK_FORMAT: 'teams' }), /XRAY_ALERT_WEBHOOK_FORMAT/);
  });

  test('channels from the environment', () => {
    const s = loadMonitoringSettings({
      XRAY_ALERT_WEBHOOK_URL: 'http://hooks/x',
      XRAY_ALERT_WEBHOOK_FORMAT: 'alertmanager',
      XRAY_ALERT_SMTP_URL: 'smtp://mail:25',
      XRAY_ALERT_EMAIL_TO: 'a@x, b@x',
      XRAY_ALERT_MIN_SEVERITY: 'critical',
    });
    const channels = envChannels(s);
    assert.deepEqual(channels.map((c) => [c.id, c.kind, c.minSeverity]), [
      ['env-webhook', 'webhook', 'critical'],
      ['env-email', 'email', 'critical'],
    ]);
    assert.deepEqual(channels[1]!.kind === 'email' && channels[1]!.settings.to, ['a@x', 'b@x']);
    assert.deepEqual(envChannels(loadMonitoringSettings({})), []);
  });
});

describe('reference documents', () => {
  test('the registry format: nested stats flattened, NORMAL/PNEUMONIA labels, summary with AUC', () => {
    const data = parseReferenceDocument({
      stats: [{ mean: 100, clip: { low: 0.01, high: 0 }, sourceFormat: 'png' }, { mean: 120, clip: { low: 0, high: 0.02 } }],
      probabilities: [0.9, 0.2, 0.7, 0.1],
      labels: ['PNEUMONIA', 'NORMAL', 1, 0],
      threshold: 0.5,
    });
    assert.deepEqual(data.stats[0], { mean: 100, 'clip.low': 0.01, 'clip.high': 0 });
    assert.deepEqual(data.labels, [1, 0, 1, 0]);
    const summary = summariseReference(data);
    assert.equal(summary.auc, 1);
    assert.equal(summary.positiveRate, 0.5);
    assert.equal(summary.sensitivity, 1);
  });

  test('oversized embeddings are subsampled reproducibly', () => {
    const embeddings = Array.from({ length: REFERENCE_MAX_EMBEDDINGS + 500 }, (_, i) => [i, 1]);
    const a = parseReferenceDocument({ embeddings }, 's');
    const b = parseReferenceDocument({ embeddings }, 's');
    assert.equal(a.embeddings.length, REFERENCE_MAX_EMBEDDINGS);
    assert.deepEqual(a.embeddings, b.embeddings);
  });

  test('malformed documents are refused with the offending field', () => {
    assert.throws(() => parseReferenceDocument([]), /JSON object/);
    assert.throws(() => parseReferenceDocument({}), /needs stats rows, embeddings or probabilities/);
    assert.throws(() => parseReferenceDocument({ probabilities: [1.5] }), /probabilities\[0\]/);
    assert.throws(() => parseReferenceDocument({ probabilities: [0.5], labels: ['maybe'] }), /labels\[0\]/);
    assert.throws(() => parseReferenceDocument({ probabilities: [0.5], labels: [1, 0] }), /as long as probabilities/);
  });
});
