import type { Registry } from 'prom-client';
import { TOPICS } from '../../core/events/index.js';
import { ClusterSchedule } from '../../core/db/cluster-schedule.js';
import type { Platform } from '../../core/platform.js';
import type { MonitoringSettings } from '../settings.js';
import { predictionQueries } from '../../deployment/client/index.js';
import type { PredictionSource } from '../store/prediction-source.js';
import { SqlReferenceStore } from '../store/reference-store.js';
import { SqlReportStore } from '../store/report-store.js';
import { SqlFeedbackStore } from '../store/feedback-store.js';
import { SqlAlertStore } from '../store/alert-store.js';
import { AuditOutcomeSource, type OutcomeSource } from '../store/outcome-source.js';
import type { Channel, RetryPolicy } from '../store/types.js';
import { NotificationDispatcher, type Senders } from '../notify/dispatcher.js';
import { MonitoringMetrics } from './model-metrics.js';
import { AlertService } from './alert-service.js';
import { evaluateTrafficRules, type RuleOutcome } from './alert-rules.js';
import { createDriftRunner, type DriftRunner } from './drift-runner.js';
import { DriftService } from './drift-service.js';
import { FeedbackService } from './feedback-service.js';
import { DriftScheduler } from './scheduler.js';
import { BackupService } from './backup-service.js';
import { modelFromEvent, registryReferenceLoader } from './registry-references.js';

/** Everything the monitoring routes call. */
export interface MonitoringContext {
  readonly platform: Platform;
  readonly settings: MonitoringSettings;
  readonly predictions: PredictionSource;
  readonly drift: DriftService;
  readonly alerts: AlertService;
  readonly feedback: FeedbackService;
  readonly metrics: MonitoringMetrics;
  readonly scheduler: DriftScheduler;
  readonly runner: DriftRunner;
  /** Backups for admins (POST /backups) and on the XRAY_BACKUP_* schedule. */
  readonly backups: BackupService;
  /** Evaluates the traffic rules (latency, error rate, positive-rate jump) now. */
  evaluateRules(now?: number): Promise<RuleOutcome[]>;
  /** Stops the schedule, subscriptions, the worker and pending notifications. */
  close(): Promise<void>;
}

export interface MonitoringOverrides {
  settings?: MonitoringSettings;
  senders?: Senders;
  predictions?: PredictionSource;
  outcomes?: OutcomeSource;
}

/** Notification channels configured by environment variables. */
export function envChannels(s: MonitoringSettings): Channel[] {
  const out: Channel[] = [];
  const common = { minSeverity: s.XRAY_ALERT_MIN_SEVERITY, enabled: true, createdBy: 'environment', createdAt: 0, fromEnv: true };
  if (s.XRAY_ALERT_WEBHOOK_URL) {
    out.push({ ...common, id: 'env-webhook', name: 'env-webhook', kind: 'webhook', settings: { url: s.XRAY_ALERT_WEBHOOK_URL, format: s.XRAY_ALERT_WEBHOOK_FORMAT } });
  }
  const to = s.XRAY_ALERT_EMAIL_TO.split(',').map((x) => x.trim()).filter(Boolean);
  if (s.XRAY_ALERT_SMTP_URL && to.length > 0) {
    out.push({ ...common, id: 'env-email', name: 'env-email', kind: 'email', settings: { smtpUrl: s.XRAY_ALERT_SMTP_URL, from: s.XRAY_ALERT_EMAIL_FROM, to } });
  }
  return out;
}

/**
 * Wires the monitoring stores and services on a platform and registers the model metrics on
 * `registry`. Starts the drift schedule (unless XRAY_DRIFT_INTERVAL_MIN=0) and subscribes to
 * model registration/promotion to import shipped reference statistics.
 */
export async function createMonitoringContext(platform: Platform, registry: Registry, overrides: MonitoringOverrides = {}): Promise<MonitoringContext> {
  const settings = overrides.settings ?? platform.config.monitoring;
  const logger = platform.logger.child({ component: 'monitoring' });
  const predictions = overrides.predictions ?? predictionQueries(platform);
  const references = new SqlReferenceStore(platform.database, platform.objects);
  const reports = new SqlReportStore(platform.database);
  const feedbackStore = new SqlFeedbackStore(platform.database);
  const alertStore = new SqlAlertStore(platform.database);
  const outcomes = overrides.outcomes ?? new AuditOutcomeSource(platform.database);

  const metrics = new MonitoringMetrics(
    registry,
    { predictions, alerts: alertStore, feedback: feedbackStore, reports, logger },
    { windowSeconds: settings.XRAY_METRICS_WINDOW_S, cacheMs: settings.XRAY_METRICS_CACHE_MS, performanceWindow: settings.XRAY_PERF_WINDOW },
  );
  const defaultRetry: RetryPolicy = {
    attempts: settings.XRAY_ALERT_RETRY_ATTEMPTS,
    initialDelayMs: settings.XRAY_ALERT_RETRY_DELAY_MS,
    maxDelayMs: settings.XRAY_ALERT_RETRY_MAX_DELAY_MS,
  };
  const dispatcher = new NotificationDispatcher({
    store: alertStore,
    envChannels: envChannels(settings),
    defaultRetry,
    baseUrl: platform.config.serviceUrls.monitoring,
    ...(overrides.senders ? { senders: overrides.senders } : {}),
    logger,
    onAttempt: (kind, outcome) => metrics.notifications.inc({ kind, outcome }),
  });
  const alerts = new AlertService({ store: alertStore, dispatcher, audit: platform.audit, metrics, logger });
  const runner = createDriftRunner(settings.XRAY_DRIFT_WORKER, logger);
  const drift = new DriftService({
    predictions,
    references,
    reports,
    feedback: feedbackStore,
    runner,
    alerts,
    metrics,
    audit: platform.audit,
    settings,
    registryReference: registryReferenceLoader(platform),
    logger,
  });
  const feedback = new FeedbackService({ predictions, feedback: feedbackStore, audit: platform.audit, metrics, window: settings.XRAY_PERF_WINDOW });
  const evaluateRules = (now?: number) =>
    evaluateTrafficRules(
      { predictions, outcomes, alerts },
      {
        windowMs: settings.XRAY_METRICS_WINDOW_S * 1000,
        latencyP95Ms: settings.XRAY_ALERT_LATENCY_P95_MS,
        errorRate: settings.XRAY_ALERT_ERROR_RATE,
        positiveRateJump: settings.XRAY_ALERT_POSITIVE_RATE_JUMP,
        minCount: settings.XRAY_ALERT_MIN_COUNT,
      },
      now,
    );
  const scheduler = new DriftScheduler({
    intervalMs: settings.XRAY_DRIFT_INTERVAL_MIN * 60_000,
    drift,
    predictions,
    afterRun: () => evaluateRules(),
    logger,
    schedule: new ClusterSchedule(platform.database, 'monitoring.drift'),
  });

  const { backup } = platform.config;
  const backups = new BackupService({
    platform,
    logger,
    scheduledTarget: backup.target,
    intervalMs: backup.intervalHours * 3_600_000,
    keep: backup.keepDaily > 0 || backup.keepWeekly > 0 ? { daily: backup.keepDaily, weekly: backup.keepWeekly } : null,
    schedule: new ClusterSchedule(platform.database, 'monitoring.backup'),
  });

  const unsubscribe: (() => Promise<void>)[] = [];
  const onModelEvent = (payload: unknown): void => {
    const m = modelFromEvent(payload);
    if (!m) return;
    void drift.importRegistryReference(m.model, m.version).catch((err) => logger.warn({ err, ...m }, 'could not import the registry reference'));
  };
  unsubscribe.push(await platform.events.subscribe(TOPICS.modelRegistered, onModelEvent));
  unsubscribe.push(await platform.events.subscribe(TOPICS.modelStageChanged, onModelEvent));
  unsubscribe.push(
    await platform.events.subscribe(TOPICS.modelLoadFailed, (payload: unknown) => {
      const e = servingEvent(payload);
      if (e) void alerts.modelNotServing(e).catch((err) => logger.error({ err, model: e.model }, 'could not raise "model not serving"'));
    }),
  );
  unsubscribe.push(
    await platform.events.subscribe(TOPICS.modelServing, (payload: unknown) => {
      const m = modelFromEvent(payload);
      if (m) void alerts.modelServing(m.model, m.version).catch((err) => logger.error({ err, ...m }, 'could not resolve "model not serving"'));
    }),
  );
  scheduler.start();
  backups.start();

  let closing: Promise<void> | null = null;
  return {
    platform,
    settings,
    predictions,
    drift,
    alerts,
    feedback,
    metrics,
    scheduler,
    runner,
    backups,
    evaluateRules,
    close() {
      closing ??= (async () => {
        for (const u of unsubscribe.splice(0)) await u().catch(() => {});
        await scheduler.stop();
        await backups.stop();
        await runner.close();
        await dispatcher.close();
      })();
      return closing;
    },
  };
}

/** The payload of TOPICS.modelLoadFailed (the deployment's ServingProblem). */
function servingEvent(payload: unknown): Parameters<AlertService['modelNotServing']>[0] | null {
  const p = (payload ?? {}) as Record<string, unknown>;
  const str = (v: unknown): string | null => (typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : null);
  const model = str(p.model) ?? str(p.name);
  const alias = str(p.alias);
  if (!model || !alias) return null;
  const err = (p.error ?? {}) as Record<string, unknown>;
  return {
    model,
    alias,
    wanted_version: str(p.wanted_version),
    serving_version: str(p.serving_version),
    error: { code: str(err.code) ?? 'INTERNAL', message: str(err.message) ?? 'the load failed' },
  };
}
