import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../../core/audit/index.js';
import type { AlertQuery, AlertStore } from '../store/alert-store.js';
import type { Alert, Channel, ChannelInput, DeadLetter, Detector, DriftReport, Page, PageRequest, Severity } from '../store/types.js';
import type { NotificationDispatcher } from '../notify/dispatcher.js';
import type { MonitoringMetrics } from './model-metrics.js';

/** Alert identity: one active alert per rule, model and version. */
export function alertFingerprint(rule: string, model: string, version: string): string {
  return createHash('sha256').update(`${rule}\n${model}\n${version}`).digest('hex').slice(0, 32);
}

export interface RaiseRequest {
  rule: string;
  model: string;
  version: string;
  severity: Severity;
  summary: string;
  details?: Record<string, unknown> | null;
}

/** Which alert rule a drift detector feeds, and how severe it is. */
export const DRIFT_RULES: Record<string, { detectors: Detector[]; severity: Severity; label: string }> = {
  data_drift: { detectors: ['data'], severity: 'warning', label: 'image statistics' },
  embedding_drift: { detectors: ['embedding_mmd', 'embedding_classifier'], severity: 'warning', label: 'image embeddings' },
  prediction_drift: { detectors: ['prediction_positive_rate', 'prediction_distribution'], severity: 'warning', label: 'predictions' },
  performance_drift: { detectors: ['performance'], severity: 'critical', label: 'performance on labelled cases' },
};

const SYSTEM_ACTOR = 'monitoring';

/** The alert rule a failed model load raises. */
export const MODEL_NOT_SERVING = 'model_not_serving';

/**
 * Alert lifecycle: raise (de-duplicated by fingerprint), acknowledge, resolve (by a person, or
 * automatically when the condition clears), with notifications on open and resolve and an audit
 * record for each change.
 */
export class AlertService {
  readonly #store: AlertStore;
  readonly #dispatcher: NotificationDispatcher;
  readonly #audit: AuditLog;
  readonly #metrics: MonitoringMetrics;
  readonly #logger: Logger | undefined;

  constructor(deps: { store: AlertStore; dispatcher: NotificationDispatcher; audit: AuditLog; metrics: MonitoringMetrics; logger?: Logger }) {
    this.#store = deps.store;
    this.#dispatcher = deps.dispatcher;
    this.#audit = deps.audit;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
  }

  /** Opens an alert (notifying channels) or records one more occurrence of the active one. */
  async raise(r: RaiseRequest): Promise<{ alert: Alert; created: boolean }> {
    const fingerprint = alertFingerprint(r.rule, r.model, r.version);
    const result = await this.#store.raise({ ...r, details: r.details ?? null, fingerprint, time: Date.now() });
    if (result.created) {
      this.#metrics.alertsRaised.inc({ rule: r.rule, severity: r.severity });
      this.#audit.record({
        actor: SYSTEM_ACTOR,
        action: 'alert.raised',
        resource: `alert/${result.alert.id}`,
        service: 'monitoring',
        details: { rule: r.rule, model: r.model, version: r.version, severity: r.severity },
      });
      await this.#dispatcher.notify(result.alert, 'firing').catch((err) => this.#logger?.error({ err }, 'could not queue alert notifications'));
    }
    this.#metrics.invalidate();
    return result;
  }

  /** Resolves the active alert of a rule/model/version, if any (the condition cleared). */
  async clear(rule: string, model: string, version: string, reason: string): Promise<Alert | null> {
    const active = await this.#store.active(alertFingerprint(rule, model, version));
    if (!active) return null;
    return this.#resolve(active.id, SYSTEM_ACTOR, undefined, reason);
  }

  async acknowledge(id: string, actor: string, requestId?: string): Promise<Alert> {
    const alert = await this.#store.acknowledge(id, actor, Date.now());
    this.#audit.record({ actor, action: 'alert.acknowledged', resource: `alert/${id}`, requestId, service: 'monitoring' });
    this.#metrics.invalidate();
    return alert;
  }

  resolve(id: string, actor: string, requestId?: string): Promise<Alert> {
    return this.#resolve(id, actor, requestId, 'resolved by hand');
  }

  async #resolve(id: string, actor: string, requestId: string | undefined, reason: string): Promise<Alert> {
    const alert = await this.#store.resolve(id, actor, Date.now());
    this.#audit.record({ actor, action: 'alert.resolved', resource: `alert/${id}`, requestId, service: 'monitoring', details: { reason } });
    this.#metrics.invalidate();
    await this.#dispatcher.notify(alert, 'resolved').catch((err) => this.#logger?.error({ err }, 'could not queue alert notifications'));
    return alert;
  }

  /**
   * A deployment could not load the version an alias points to: "model not serving" (critical),
   * one active alert per model and wanted version, with what serves instead.
   */
  async modelNotServing(e: { model: string; alias: string; wanted_version: string | null; serving_version: string | null; error: { code: string; message: string } }): Promise<Alert> {
    const serving = e.serving_version ? `version ${e.serving_version} keeps serving` : 'nothing serves';
    const wanted = e.wanted_version ? `version ${e.wanted_version} (${e.alias})` : `the '${e.alias}' alias`;
    const { alert } = await this.raise({
      rule: MODEL_NOT_SERVING,
      model: e.model,
      version: e.wanted_version ?? e.alias,
      severity: 'critical',
      summary: `Model not serving: the deployment could not load ${e.model} ${wanted}; ${serving}. ${e.error.message}`,
      details: { alias: e.alias, wanted_version: e.wanted_version, serving_version: e.serving_version, error: e.error },
    });
    return alert;
  }

  /** The deployment serves a model's alias again: its "model not serving" alerts resolve. */
  async modelServing(model: string, version: string): Promise<void> {
    const active = await this.#store.list({ status: 'active', rule: MODEL_NOT_SERVING, model, pageSize: 100 });
    for (const a of active.items) await this.#resolve(a.id, SYSTEM_ACTOR, undefined, `the deployment serves ${model} version ${version}`);
  }

  /** Raises or clears the drift rules from a drift report. */
  async applyDriftReport(report: DriftReport): Promise<Alert[]> {
    if (report.verdict === 'insufficient_data') return [];
    const raised: Alert[] = [];
    for (const [rule, spec] of Object.entries(DRIFT_RULES)) {
      const checks = report.checks.filter((c) => spec.detectors.includes(c.detector) && !c.skipped);
      if (checks.length === 0) continue;
      const drifted = checks.filter((c) => c.drifted);
      if (drifted.length === 0) {
        await this.clear(rule, report.model, report.version, `drift report ${report.id} found no ${spec.label} drift`);
        continue;
      }
      const describe = drifted
        .map((c) => `${c.method} ${c.statistic === null ? '' : `statistic ${round(c.statistic)}`}${c.p_value === null ? '' : ` p=${round(c.p_value)}`}`.trim())
        .join('; ');
      const { alert } = await this.raise({
        rule,
        model: report.model,
        version: report.version,
        severity: spec.severity,
        summary: `Drift in ${spec.label} of ${report.model} v${report.version} (${report.n_current} predictions vs ${report.n_reference} reference rows): ${describe}`,
        details: {
          report_id: report.id,
          detectors: drifted.map((c) => c.detector),
          ...(rule === 'data_drift' ? { drifted_features: report.features.filter((f) => f.drifted).map((f) => f.feature) } : {}),
        },
      });
      raised.push(alert);
    }
    return raised;
  }

  get(id: string): Promise<Alert> {
    return this.#store.get(id);
  }

  list(query: AlertQuery): Promise<Page<Alert>> {
    return this.#store.list(query);
  }

  channels(): Promise<Channel[]> {
    return this.#dispatcher.channels();
  }

  async createChannel(input: ChannelInput, actor: string, requestId?: string): Promise<Channel> {
    const channel = await this.#store.createChannel(input, actor);
    this.#audit.record({ actor, action: 'alert.channel.created', resource: `alert-channel/${channel.id}`, requestId, service: 'monitoring', details: { name: input.name, kind: input.kind } });
    return channel;
  }

  async deleteChannel(id: string, actor: string, requestId?: string): Promise<void> {
    await this.#store.deleteChannel(id);
    this.#audit.record({ actor, action: 'alert.channel.deleted', resource: `alert-channel/${id}`, requestId, service: 'monitoring' });
  }

  deadLetters(query: PageRequest & { alertId?: string }): Promise<Page<DeadLetter>> {
    return this.#store.listDeadLetters(query);
  }

  /** Waits for notifications in flight (tests, shutdown). */
  idle(): Promise<void> {
    return this.#dispatcher.idle();
  }
}

function round(v: number): string {
  return Math.abs(v) >= 0.001 || v === 0 ? v.toFixed(3) : v.toExponential(2);
}
