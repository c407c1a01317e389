import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { PredictionSource } from '../store/prediction-source.js';
import type { AlertStore } from '../store/alert-store.js';
import type { FeedbackStore } from '../store/feedback-store.js';
import type { ReportStore } from '../store/report-store.js';
import type { DriftReport } from '../store/types.js';
import { rollingPerformance } from './performance.js';

export interface MetricsOptions {
  /** Window of recent predictions behind the traffic gauges, in seconds. */
  windowSeconds: number;
  /** How long a refresh is reused between scrapes. */
  cacheMs: number;
  /** Labelled predictions behind the performance gauges. */
  performanceWindow: number;
}

/** Every metric name the monitoring service exports (besides the shared HTTP/process ones). */
export const MONITORING_METRIC_NAMES = [
  'xray_model_prediction_rate',
  'xray_model_predictions_window',
  'xray_model_positive_rate',
  'xray_model_mean_probability',
  'xray_model_latency_seconds',
  'xray_model_auc',
  'xray_model_sensitivity',
  'xray_model_specificity',
  'xray_model_labelled_predictions',
  'xray_drift_detected',
  'xray_drift_score',
  'xray_drift_last_check_timestamp_seconds',
  'xray_drift_checks_total',
  'xray_drift_check_duration_seconds',
  'xray_alerts_open',
  'xray_alerts_raised_total',
  'xray_alert_notifications_total',
  'xray_feedback_total',
] as const;

const QUANTILES = [0.5, 0.9, 0.99];

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

type LatencyLabels = { model: string; version: string; variant: string };

/**
 * Prediction latency over the metrics window as a Prometheus summary: quantile series plus `_sum`
 * and `_count`, recomputed from the prediction records on each refresh (every replica's predictions,
 * not only this process's). A gauge with a `quantile` label is not valid exposition (promtool).
 */
class WindowLatencySummary {
  readonly name = 'xray_model_latency_seconds';
  readonly help: string;
  readonly type = 'summary';
  readonly aggregator = 'omit' as const;
  readonly #collect: () => Promise<void>;
  #series: { labels: LatencyLabels; sortedMs: number[] }[] = [];

  constructor(registry: Registry, help: string, collect: () => Promise<void>) {
    this.help = help;
    this.#collect = collect;
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  set(labels: LatencyLabels, sortedMs: number[]): void {
    this.#series.push({ labels, sortedMs });
  }

  reset(): void {
    this.#series = [];
  }

  async get() {
    await this.#collect();
    const values: { labels: Record<string, string | number>; value: number; metricName?: string }[] = [];
    for (const { labels, sortedMs } of this.#series) {
      for (const q of QUANTILES) values.push({ labels: { ...labels, quantile: q }, value: quantile(sortedMs, q) / 1000 });
      values.push({ metricName: `${this.name}_sum`, labels, value: sortedMs.reduce((a, b) => a + b, 0) / 1000 });
      values.push({ metricName: `${this.name}_count`, labels, value: sortedMs.length });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

/**
 * Model-level Prometheus metrics on the monitoring service's registry. Traffic, performance and
 * alert gauges are recomputed from the stores when scraped (at most once per `cacheMs`); drift
 * gauges are set after each drift check (and restored from the newest reports after a restart).
 */
export class MonitoringMetrics {
  readonly #deps: { predictions: PredictionSource; alerts: AlertStore; feedback: FeedbackStore; reports: ReportStore; logger?: Logger };
  readonly #options: MetricsOptions;
  #refreshing: Promise<void> | null = null;
  #refreshedAt = 0;
  #driftRestored = false;

  readonly predictionRate: Gauge;
  readonly predictionsWindow: Gauge;
  readonly positiveRate: Gauge;
  readonly meanProbability: Gauge;
  readonly latency: WindowLatencySummary;
  readonly auc: Gauge;
  readonly sensitivity: Gauge;
  readonly specificity: Gauge;
  readonly labelled: Gauge;
  readonly driftDetected: Gauge;
  readonly driftScore: Gauge;
  readonly driftLastCheck: Gauge;
  readonly driftChecks: Counter;
  readonly driftDuration: Histogram;
  readonly alertsOpen: Gauge;
  readonly alertsRaised: Counter;
  readonly notifications: Counter;
  readonly feedbackTotal: Counter;

  constructor(
    registry: Registry,
    deps: { predictions: PredictionSource; alerts: AlertStore; feedback: FeedbackStore; reports: ReportStore; logger?: Logger },
    options: MetricsOptions,
  ) {
    this.#deps = deps;
    this.#options = options;
    const registers = [registry];
    const refresh = async (): Promise<void> => this.refresh();
    const traffic = ['model', 'version', 'variant'];
    const perf = ['model', 'version'];
    const windowText = `over the last ${options.windowSeconds} s`;
    this.predictionRate = new Gauge({ name: 'xray_model_prediction_rate', help: `Predictions per second ${windowText}`, labelNames: traffic, registers, collect: refresh });
    this.predictionsWindow = new Gauge({ name: 'xray_model_predictions_window', help: `Predictions ${windowText}`, labelNames: traffic, registers, collect: refresh });
    this.positiveRate = new Gauge({ name: 'xray_model_positive_rate', help: `Share of predictions at or above the decision threshold ${windowText}`, labelNames: traffic, registers, collect: refresh });
    this.meanProbability = new Gauge({ name: 'xray_model_mean_probability', help: `Mean positive-class probability ${windowText}`, labelNames: traffic, registers, collect: refresh });
    this.latency = new WindowLatencySummary(registry, `Prediction latency ${windowText} (summary over the prediction records)`, refresh);
    this.auc = new Gauge({ name: 'xray_model_auc', help: 'Rolling ROC AUC over labelled predictions (feedback)', labelNames: perf, registers, collect: refresh });
    this.sensitivity = new Gauge({ name: 'xray_model_sensitivity', help: 'Rolling sensitivity over labelled predictions', labelNames: perf, registers, collect: refresh });
    this.specificity = new Gauge({ name: 'xray_model_specificity', help: 'Rolling specificity over labelled predictions', labelNames: perf, registers, collect: refresh });
    this.labelled = new Gauge({ name: 'xray_model_labelled_predictions', help: 'Labelled predictions behind the rolling performance gauges', labelNames: perf, registers, collect: refresh });
    this.driftDetected = new Gauge({ name: 'xray_drift_detected', help: '1 when the latest drift check flagged this detector (detector="any": any detector)', labelNames: ['model', 'version', 'detector'], registers, collect: refresh });
    this.driftScore = new Gauge({ name: 'xray_drift_score', help: 'Statistic of the latest drift check per detector (share of drifted features, MMD², classifier AUC, z, KS D, AUC)', labelNames: ['model', 'version', 'detector'], registers, collect: refresh });
    this.driftLastCheck = new Gauge({ name: 'xray_drift_last_check_timestamp_seconds', help: 'Time of the latest drift check', labelNames: ['model', 'version'], registers, collect: refresh });
    this.driftChecks = new Counter({ name: 'xray_drift_checks_total', help: 'Drift checks by verdict and trigger', labelNames: ['model', 'verdict', 'trigger'], registers });
    this.driftDuration = new Histogram({ name: 'xray_drift_check_duration_seconds', help: 'Duration of drift checks (loading + computation)', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers });
    this.alertsOpen = new Gauge({ name: 'xray_alerts_open', help: 'Alerts not yet resolved, by severity and status', labelNames: ['severity', 'status'], registers, collect: refresh });
    this.alertsRaised = new Counter({ name: 'xray_alerts_raised_total', help: 'Alerts opened (de-duplicated repeats not counted)', labelNames: ['rule', 'severity'], registers });
    this.notifications = new Counter({ name: 'xray_alert_notifications_total', help: 'Alert notification attempts by channel kind and outcome (delivered, failed, dead_letter)', labelNames: ['kind', 'outcome'], registers });
    this.feedbackTotal = new Counter({ name: 'xray_feedback_total', help: 'Ground-truth labels received', labelNames: ['model'], registers });
    // Zero-valued series so the names always exist for dashboards and rules.
    for (const severity of ['info', 'warning', 'critical']) for (const status of ['open', 'acknowledged']) this.alertsOpen.set({ severity, status }, 0);
  }

  /** Recomputes the store-backed gauges unless a refresh is younger than `cacheMs`. */
  refresh(): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    if (Date.now() - this.#refreshedAt < this.#options.cacheMs) return Promise.resolve();
    this.#refreshing = this.#compute()
      .catch((err) => this.#deps.logger?.warn({ err }, 'model metrics refresh failed'))
      .finally(() => {
        this.#refreshedAt = Date.now();
        this.#refreshing = null;
      });
    return this.#refreshing;
  }

  /** Forces the next scrape to recompute. */
  invalidate(): void {
    this.#refreshedAt = 0;
  }

  async #compute(): Promise<void> {
    const now = Date.now();
    const windowMs = this.#options.windowSeconds * 1000;
    const [groups, counts, labelledVersions] = await Promise.all([
      this.#deps.predictions.traffic(now - windowMs, now).catch(() => []),
      this.#deps.alerts.countActive(),
      this.#deps.feedback.versions(),
    ]);
    for (const g of [this.predictionRate, this.predictionsWindow, this.positiveRate, this.meanProbability, this.latency]) g.reset();
    for (const g of groups) {
      const labels = { model: g.model, version: g.version, variant: g.variant };
      this.predictionRate.set(labels, g.count / this.#options.windowSeconds);
      this.predictionsWindow.set(labels, g.count);
      this.positiveRate.set(labels, g.count ? g.positives / g.count : 0);
      this.meanProbability.set(labels, g.count ? g.probabilitySum / g.count : 0);
      const sorted = g.latenciesMs.sort((a, b) => a - b);
      this.latency.set(labels, sorted);
    }

    const tally: Record<string, number> = {};
    for (const c of counts) tally[`${c.severity}|${c.status}`] = c.count;
    for (const severity of ['info', 'warning', 'critical']) {
      for (const status of ['open', 'acknowledged']) this.alertsOpen.set({ severity, status }, tally[`${severity}|${status}`] ?? 0);
    }

    for (const g of [this.auc, this.sensitivity, this.specificity, this.labelled]) g.reset();
    for (const { model, version } of labelledVersions) {
      const perf = rollingPerformance(await this.#deps.feedback.recent(model, version, this.#options.performanceWindow));
      const labels = { model, version };
      this.labelled.set(labels, perf.n);
      if (perf.auc !== null) this.auc.set(labels, perf.auc);
      if (perf.sensitivity !== null) this.sensitivity.set(labels, perf.sensitivity);
      if (perf.specificity !== null) this.specificity.set(labels, perf.specificity);
    }

    if (!this.#driftRestored) {
      this.#driftRestored = true;
      for (const report of await this.#deps.reports.latestPerVersion()) this.#setDrift(report);
    }
  }

  /** Updates the drift gauges and counters after a check. */
  recordDriftReport(report: DriftReport): void {
    this.#driftRestored = true;
    this.driftChecks.inc({ model: report.model, verdict: report.verdict, trigger: report.trigger });
    this.driftDuration.observe(report.duration_ms / 1000);
    this.#setDrift(report);
  }

  #setDrift(report: DriftReport): void {
    const base = { model: report.model, version: report.version };
    this.driftLastCheck.set(base, report.created_at / 1000);
    if (report.verdict === 'insufficient_data') return;
    for (const c of report.checks) {
      if (c.skipped) continue;
      this.driftDetected.set({ ...base, detector: c.detector }, c.drifted ? 1 : 0);
      if (c.statistic !== null && Number.isFinite(c.statistic)) this.driftScore.set({ ...base, detector: c.detector }, c.statistic);
    }
    this.driftDetected.set({ ...base, detector: 'any' }, report.verdict === 'drift' ? 1 : 0);
  }
}
