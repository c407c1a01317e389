import { z } from 'zod';
import { ConfigError } from './errors.js';

const onOff = z
  .enum(['on', 'off', 'true', 'false', '1', '0'])
  .transform((v) => v === 'on' || v === 'true' || v === '1');
const num = z.coerce.number();

/**
 * The monitoring service's own variables (drift thresholds, schedule, alert rules, env-configured
 * notification channels). Defaults follow Evidently (data drift, domain classifier) and Alibi
 * Detect (MMD). Parsed with the rest of the configuration at start (Config.monitoring).
 */
export const monitoringSettingsSchema = z.object({
  XRAY_DRIFT_INTERVAL_MIN: num.min(0).max(7 * 24 * 60).default(15).describe('Minutes between scheduled drift checks of every model version with recent predictions (0 = off).'),
  XRAY_DRIFT_WORKER: onOff.default(true).describe('Run drift computations in a worker thread (off = on the main thread, in chunks between requests).'),
  XRAY_DRIFT_REFERENCE_SIZE: num.int().min(10).max(100000).default(1000).describe('Predictions taken, oldest first, as the automatic reference of a model version that has none.'),
  XRAY_DRIFT_MIN_ROWS: num.int().min(2).max(100000).default(30).describe('Fewest rows on each side for a drift check (fewer: verdict insufficient_data).'),
  XRAY_DRIFT_MAX_WINDOW: num.int().min(100).max(1000000).default(50000).describe('Most recent predictions read for one window.'),
  XRAY_DRIFT_KS_MAX_ROWS: num.int().min(1).default(1000).describe('KS test on image statistics while the reference has at most this many rows; normed Wasserstein above.'),
  XRAY_DRIFT_KS_ALPHA: num.gt(0).lt(1).default(0.05).describe('KS significance level per feature.'),
  XRAY_DRIFT_WASSERSTEIN: num.gt(0).default(0.1).describe('Normed Wasserstein distance from which a feature drifts.'),
  XRAY_DRIFT_SHARE: num.gt(0).max(1).default(0.5).describe('Share of drifted features that flags dataset drift.'),
  XRAY_DRIFT_MMD_ALPHA: num.gt(0).lt(1).default(0.05).describe('MMD permutation-test significance level.'),
  XRAY_DRIFT_MMD_PERMUTATIONS: num.int().min(10).max(10000).default(200).describe('MMD permutations.'),
  XRAY_DRIFT_MMD_SAMPLES: num.int().min(10).max(3000).default(1000).describe('Embeddings per side used by MMD (subsampled).'),
  XRAY_DRIFT_CLASSIFIER_AUC: num.gt(0.5).lt(1).default(0.55).describe('Domain-classifier ROC AUC above which embeddings drift.'),
  XRAY_DRIFT_CLASSIFIER_ALPHA: num.gt(0).lt(1).default(0.05).describe('Significance level at which the domain-classifier AUC must also exceed 0.5.'),
  XRAY_DRIFT_CLASSIFIER_SAMPLES: num.int().min(10).max(5000).default(1000).describe('Embeddings per side used by the domain classifier.'),
  XRAY_DRIFT_PREDICTION_ALPHA: num.gt(0).lt(1).default(0.05).describe('Significance level of the positive-rate z-test and the probability KS test.'),
  XRAY_PERF_WINDOW: num.int().min(10).max(100000).default(500).describe('Most recent labelled predictions used for rolling AUC/sensitivity/specificity.'),
  XRAY_PERF_MIN_LABELS: num.int().min(2).default(30).describe('Fewest labelled predictions (with both classes) for a performance check.'),
  XRAY_PERF_MAX_AUC_DROP: num.gt(0).lt(1).default(0.05).describe('Performance drift when the rolling AUC falls this far below the reference AUC.'),
  XRAY_PERF_MIN_AUC: num.gt(0).lt(1).default(0.75).describe('Performance drift when the rolling AUC falls below this and the reference has no AUC.'),
  XRAY_METRICS_WINDOW_S: num.int().min(10).max(86400).default(300).describe('Window of recent predictions behind the model gauges on /metrics.'),
  XRAY_METRICS_CACHE_MS: num.int().min(0).max(600000).default(5000).describe('How long model gauges are reused between scrapes.'),
  XRAY_ALERT_LATENCY_P95_MS: num.positive().default(1000).describe('Alert when a model version\'s p95 latency over the metrics window exceeds this.'),
  XRAY_ALERT_ERROR_RATE: num.gt(0).lt(1).default(0.05).describe('Alert when the share of failed predictions (audit trail) over the metrics window exceeds this.'),
  XRAY_ALERT_POSITIVE_RATE_JUMP: num.gt(0).lt(1).default(0.2).describe('Alert when the positive rate moves this much (absolute) between consecutive metrics windows.'),
  XRAY_ALERT_MIN_COUNT: num.int().min(1).default(50).describe('Fewest predictions in a window before latency / error-rate / positive-rate rules fire.'),
  XRAY_ALERT_WEBHOOK_URL: z.string().default('').describe('Webhook notified of alerts (Slack-compatible JSON, or Alertmanager format, see XRAY_ALERT_WEBHOOK_FORMAT).'),
  XRAY_ALERT_WEBHOOK_FORMAT: z.enum(['slack', 'alertmanager']).default('slack').describe('Payload format of XRAY_ALERT_WEBHOOK_URL.'),
  XRAY_ALERT_SMTP_URL: z.string().default('').describe('SMTP server for alert e-mails, e.g. smtp://user:pass@mail:587.'),
  XRAY_ALERT_EMAIL_FROM: z.string().default('xray-mlops@localhost').describe('Sender of alert e-mails.'),
  XRAY_ALERT_EMAIL_TO: z.string().default('').describe('Comma list of alert e-mail recipients.'),
  XRAY_ALERT_MIN_SEVERITY: z.enum(['info', 'warning', 'critical']).default('warning').describe('Least severity sent to the env-configured channels.'),
  XRAY_ALERT_RETRY_ATTEMPTS: num.int().min(1).max(20).default(5).describe('Delivery attempts per notification before a dead-letter record.'),
  XRAY_ALERT_RETRY_DELAY_MS: num.int().min(1).default(1000).describe('First retry delay; doubles each attempt.'),
  XRAY_ALERT_RETRY_MAX_DELAY_MS: num.int().min(1).default(60000).describe('Longest retry delay.'),
});

export type MonitoringSettings = z.infer<typeof monitoringSettingsSchema>;

/** Parses the monitoring variables; a bad value throws ConfigError naming the variable. */
export function loadMonitoringSettings(env: Record<string, string | undefined>): MonitoringSettings {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(monitoringSettingsSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  const result = monitoringSettingsSchema.safeParse(picked);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(picked[String(i.path[0])])})`);
    throw new ConfigError(`invalid monitoring configuration:\n  ${lines.join('\n  ')}`);
  }
  return result.data;
}

/** Defaults with overrides (tests, benchmarks). */
export function monitoringSettings(overrides: Partial<MonitoringSettings> = {}): MonitoringSettings {
  return { ...loadMonitoringSettings({}), ...overrides };
}
