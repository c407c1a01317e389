import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../../core/audit/index.js';
import { AppError, invalidInput } from '../../core/errors.js';
import type { PredictionSource, PredictionWindow, WindowQuery } from '../store/prediction-source.js';
import type { ReferenceStore } from '../store/reference-store.js';
import type { ReportStore } from '../store/report-store.js';
import type { FeedbackStore } from '../store/feedback-store.js';
import type { DriftCheck, DriftReport, DriftWindow, ReferenceData, ReferenceInfo, ReferenceSource } from '../store/types.js';
import type { MonitoringSettings } from '../settings.js';
import type { DriftOptions, DriftSide } from './drift-compute.js';
import type { DriftRunner } from './drift-runner.js';
import type { AlertService } from './alert-service.js';
import type { MonitoringMetrics } from './model-metrics.js';
import { rollingPerformance } from './performance.js';
import type { RegistryReferenceLoader } from './registry-references.js';
import { parseReferenceDocument, referenceFeatures, referenceFromWindow, REFERENCE_MAX_ROWS, summariseReference } from './reference-data.js';

/** A current window: a time range, or the most recent n predictions. */
export type WindowSpec = { since?: number; until?: number; lastN?: undefined } | { lastN: number; since?: undefined; until?: undefined };

export interface DetectInput {
  model: string;
  /** Default: the version with the most recent prediction. */
  version?: string;
  /** Default: the newest reference of the version, else the automatic one. */
  referenceId?: string;
  window: WindowSpec;
  trigger: 'manual' | 'schedule';
  actor: string;
  requestId?: string;
  /** Per-check threshold overrides. */
  overrides?: Partial<DriftOptions>;
  /** Store (and return) a report when a side has too few rows (default true). */
  keepInsufficient?: boolean;
}

export type ReferenceRequest =
  | { from: 'predictions'; window?: { since?: number; until?: number; lastN?: number; firstN?: number }; predictionIds?: string[] }
  | { from: 'rows' | 'registry'; document: unknown };

export interface DriftServiceDeps {
  predictions: PredictionSource;
  references: ReferenceStore;
  reports: ReportStore;
  feedback: FeedbackStore;
  runner: DriftRunner;
  alerts: AlertService;
  metrics: MonitoringMetrics;
  audit: AuditLog;
  settings: MonitoringSettings;
  /** Reads a version's shipped `reference.json` from the registry (null when none). */
  registryReference?: RegistryReferenceLoader;
  logger?: Logger;
}

/** The settings' detector thresholds as {@link DriftOptions}. */
export function driftOptionsFrom(s: MonitoringSettings): DriftOptions {
  return {
    ksMaxRows: s.XRAY_DRIFT_KS_MAX_ROWS,
    ksAlpha: s.XRAY_DRIFT_KS_ALPHA,
    wassersteinThreshold: s.XRAY_DRIFT_WASSERSTEIN,
    datasetDriftShare: s.XRAY_DRIFT_SHARE,
    mmdAlpha: s.XRAY_DRIFT_MMD_ALPHA,
    mmdPermutations: s.XRAY_DRIFT_MMD_PERMUTATIONS,
    mmdSamples: s.XRAY_DRIFT_MMD_SAMPLES,
    classifierAucThreshold: s.XRAY_DRIFT_CLASSIFIER_AUC,
    classifierAlpha: s.XRAY_DRIFT_CLASSIFIER_ALPHA,
    classifierSamples: s.XRAY_DRIFT_CLASSIFIER_SAMPLES,
    predictionAlpha: s.XRAY_DRIFT_PREDICTION_ALPHA,
    minRows: s.XRAY_DRIFT_MIN_ROWS,
  };
}

function median(values: number[]): number {
  if (values.length === 0) return 0.5;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

/**
 * Drift detection: resolves the reference and the current window of prediction records, runs
 * the detectors off the request path (worker thread), adds the performance check from
 * ground-truth feedback, stores the report, updates the gauges and raises or clears alerts.
 *
 * Reference policy (in order): the reference named in the request; the newest stored reference
 * of the model version (posted, or imported on registration/promotion); the `reference.json`
 * artifact the registry holds for the version (imported now); else an automatic one — the
 * version's first `XRAY_DRIFT_REFERENCE_SIZE` predictions, created at the first check once that
 * many exist. Rows of an automatic reference never count in a current window.
 */
export class DriftService {
  readonly #d: DriftServiceDeps;
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(deps: DriftServiceDeps) {
    this.#d = deps;
  }

  get options(): DriftOptions {
    return driftOptionsFrom(this.#d.settings);
  }

  /** Runs one drift check; serialised per model version. */
  detect(input: DetectInput): Promise<DriftReport> {
    const key = `${input.model}\u0000${input.version ?? ''}`;
    const prev = this.#locks.get(key) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(() => this.#detect(input));
    this.#locks.set(key, run);
    void run.finally(() => {
      if (this.#locks.get(key) === run) this.#locks.delete(key);
    }).catch(() => {});
    return run;
  }

  async #detect(input: DetectInput): Promise<DriftReport> {
    const started = performance.now();
    const s = this.#d.settings;
    const options: DriftOptions = { ...this.options, ...(input.overrides ?? {}) };
    const version = input.version ?? (await this.#d.predictions.latestVersion(input.model));
    if (version === null) throw new AppError('NOT_FOUND', `model '${input.model}' has no prediction records`);
    const id = randomUUID();
    const window: DriftWindow = { since: input.window.since ?? null, until: input.window.until ?? null, last_n: input.window.lastN ?? null };
    // Seeded by what is checked, not by the report id: the same window of the same data gives the same verdict.
    const seed = `${input.model}:${version}:${window.since}:${window.until}:${window.last_n}`;

    const resolved = await this.#resolveReference(input.model, version, input.referenceId, input.actor);
    const base: Omit<DriftReport, 'verdict' | 'drifted_detectors' | 'checks' | 'features' | 'n_current' | 'observed' | 'duration_ms'> = {
      id,
      model: input.model,
      version,
      reference_id: resolved.info?.id ?? null,
      trigger: input.trigger,
      window,
      n_reference: resolved.data?.stats.length ?? 0,
      options: {
        ...Object.fromEntries(Object.entries(options).filter(([, v]) => typeof v === 'number' || typeof v === 'string' || Array.isArray(v))),
        reference_policy: resolved.info?.source ?? 'auto',
      },
      created_by: input.actor,
      created_at: Date.now(),
    };

    const query: WindowQuery = {
      model: input.model,
      version,
      limit: s.XRAY_DRIFT_MAX_WINDOW,
      embeddingSample: Math.max(options.mmdSamples, options.classifierSamples),
      seed,
    };
    if (input.window.lastN !== undefined) query.lastN = input.window.lastN;
    if (input.window.since !== undefined) query.since = input.window.since;
    if (input.window.until !== undefined) query.until = input.window.until;
    if (resolved.info?.source === 'auto' && resolved.info.windowUntil !== null) query.after = resolved.info.windowUntil;
    const current = await this.#d.predictions.window(query);
    const observed = { first: current.times[0] ?? null, last: current.times[current.times.length - 1] ?? null };

    let checks: DriftCheck[] = [];
    let features: DriftReport['features'] = [];
    let verdict: DriftReport['verdict'];
    const nRef = resolved.data ? Math.max(resolved.data.stats.length, resolved.data.probabilities.length) : 0;
    if (!resolved.data || nRef < options.minRows || current.ids.length < options.minRows) {
      if (input.keepInsufficient === false) throw new AppError('UNPROCESSABLE', resolved.reason ?? 'too few rows for a drift check');
      verdict = 'insufficient_data';
      const reason =
        resolved.reason ??
        `need at least ${options.minRows} rows on each side (reference ${nRef}, current ${current.ids.length})`;
      checks = [{ detector: 'data', method: 'none', statistic: null, p_value: null, threshold: options.minRows, rule: 'rows >= threshold', drifted: false, skipped: reason }];
    } else {
      const curSide: DriftSide = { stats: current.stats, embeddings: current.embeddings, probabilities: current.probabilities, threshold: median(current.thresholds) };
      const refSide: DriftSide = {
        stats: resolved.data.stats,
        embeddings: resolved.data.embeddings,
        probabilities: resolved.data.probabilities,
        threshold: curSide.threshold,
      };
      const computed = await this.#d.runner.run(refSide, curSide, options, seed);
      checks = computed.checks;
      features = computed.features;
      checks.push(await this.#performanceCheck(input.model, version, current, resolved.info));
      verdict = checks.some((c) => c.drifted) ? 'drift' : 'no_drift';
    }

    const report: DriftReport = {
      ...base,
      n_current: current.ids.length,
      observed,
      verdict,
      drifted_detectors: checks.filter((c) => c.drifted).map((c) => c.detector),
      checks,
      features,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
    };
    await this.#d.reports.insert(report);
    this.#d.metrics.recordDriftReport(report);
    this.#d.audit.record({
      actor: input.actor,
      action: 'drift.check',
      resource: `drift-report/${id}`,
      requestId: input.requestId,
      service: 'monitoring',
      details: { model: input.model, version, verdict, drifted: report.drifted_detectors, trigger: input.trigger, n_current: report.n_current },
    });
    await this.#d.alerts.applyDriftReport(report).catch((err) => this.#d.logger?.error({ err, report: id }, 'could not apply alert rules to a drift report'));
    return report;
  }

  async #performanceCheck(model: string, version: string, current: PredictionWindow, ref: ReferenceInfo | null): Promise<DriftCheck> {
    const s = this.#d.settings;
    const first = current.times[0];
    const last = current.times[current.times.length - 1];
    const labelled = await this.#d.feedback.recent(model, version, s.XRAY_PERF_WINDOW, { since: first, until: last });
    const perf = rollingPerformance(labelled);
    const refAuc = ref?.summary.auc;
    const bound = refAuc !== undefined ? refAuc - s.XRAY_PERF_MAX_AUC_DROP : s.XRAY_PERF_MIN_AUC;
    const base = {
      detector: 'performance' as const,
      method: 'rolling_auc',
      threshold: bound,
      rule: refAuc !== undefined ? `statistic < reference AUC (${refAuc.toFixed(3)}) - ${s.XRAY_PERF_MAX_AUC_DROP}` : 'statistic < threshold',
    };
    const details = { n: perf.n, positives: perf.positives, sensitivity: perf.sensitivity, specificity: perf.specificity, accuracy: perf.accuracy, reference_auc: refAuc ?? null };
    if (perf.n < s.XRAY_PERF_MIN_LABELS || perf.auc === null) {
      return { ...base, statistic: perf.auc, p_value: null, drifted: false, skipped: `need ${s.XRAY_PERF_MIN_LABELS} labelled predictions with both classes in the window (have ${perf.n})`, details };
    }
    return { ...base, statistic: perf.auc, p_value: null, drifted: perf.auc < bound, details };
  }

  async #resolveReference(
    model: string,
    version: string,
    referenceId: string | undefined,
    actor: string,
  ): Promise<{ info: ReferenceInfo | null; data: ReferenceData | null; reason?: string }> {
    const refs = this.#d.references;
    if (referenceId) {
      const info = await refs.get(referenceId);
      if (info.model !== model) throw invalidInput(`reference '${referenceId}' belongs to model '${info.model}', not '${model}'`);
      return { info, data: await refs.load(info) };
    }
    const latest = await refs.latest(model, version);
    if (latest) return { info: latest, data: await refs.load(latest) };
    const shipped = await this.#loadRegistryReference(model, version);
    if (shipped) {
      const info = await this.#storeReference(model, version, 'registry', parseReferenceDocument(shipped, `${model}:${version}`), 'model-registry');
      return { info, data: await refs.load(info) };
    }
    const n = this.#d.settings.XRAY_DRIFT_REFERENCE_SIZE;
    const first = await this.#d.predictions.window({ model, version, firstN: n, limit: n, embeddingSample: 3000, seed: `${model}:${version}:auto` });
    if (first.ids.length < n) {
      return { info: null, data: null, reason: `no reference for ${model} v${version}: the automatic reference needs its first ${n} predictions (has ${first.ids.length}); post one to /drift/reference` };
    }
    const info = await this.#storeReference(model, version, 'auto', referenceFromWindow(first), actor, {
      since: first.times[0] ?? null,
      until: first.times[first.times.length - 1] ?? null,
    });
    return { info, data: await refs.load(info) };
  }

  async #storeReference(
    model: string,
    version: string,
    source: ReferenceSource,
    data: ReferenceData,
    actor: string,
    window: { since: number | null; until: number | null } = { since: null, until: null },
    requestId?: string,
  ): Promise<ReferenceInfo> {
    const info = await this.#d.references.create(
      { model, version, source, features: referenceFeatures(data), windowSince: window.since, windowUntil: window.until, summary: summariseReference(data), createdBy: actor },
      data,
    );
    this.#d.audit.record({
      actor,
      action: 'drift.reference.created',
      resource: `drift-reference/${info.id}`,
      requestId,
      service: 'monitoring',
      details: { model, version, source, n_rows: info.nRows, n_embeddings: info.nEmbeddings },
    });
    return info;
  }

  /** Stores a reference from prediction records, posted rows or a registry `reference.json`. */
  async createReference(model: string, version: string, request: ReferenceRequest, actor: string, requestId?: string): Promise<ReferenceInfo> {
    if (request.from !== 'predictions') {
      const data = parseReferenceDocument(request.document, `${model}:${version}`);
      return this.#storeReference(model, version, request.from, data, actor, undefined, requestId);
    }
    const query: WindowQuery = { model, version, limit: REFERENCE_MAX_ROWS, embeddingSample: 3000, seed: `${model}:${version}:reference` };
    const w = request.window;
    if (request.predictionIds) {
      if (request.predictionIds.length === 0) throw invalidInput('prediction_ids is empty');
      query.ids = request.predictionIds;
    } else if (w?.firstN !== undefined) query.firstN = w.firstN;
    else if (w && w.lastN !== undefined) query.lastN = w.lastN;
    else if (w) {
      if (w.since !== undefined) query.since = w.since;
      if (w.until !== undefined) query.until = w.until;
    } else throw invalidInput('give a window or prediction_ids to build a reference from predictions');
    const window = await this.#d.predictions.window(query);
    if (window.ids.length < 2) throw new AppError('UNPROCESSABLE', `only ${window.ids.length} prediction records of ${model} v${version} match; a reference needs at least 2`);
    return this.#storeReference(
      model,
      version,
      'predictions',
      referenceFromWindow(window),
      actor,
      { since: window.times[0] ?? null, until: window.times[window.times.length - 1] ?? null },
      requestId,
    );
  }

  async #loadRegistryReference(model: string, version: string): Promise<unknown | null> {
    if (!this.#d.registryReference) return null;
    try {
      return await this.#d.registryReference(model, version);
    } catch (err) {
      this.#d.logger?.warn({ err, model, version }, 'could not read the registry reference');
      return null;
    }
  }

  /**
   * On registration/promotion: imports the version's shipped `reference.json` unless the version
   * already has a reference. Returns the new reference, or null.
   */
  async importRegistryReference(model: string, version: string): Promise<ReferenceInfo | null> {
    if (await this.#d.references.latest(model, version)) return null;
    const document = await this.#loadRegistryReference(model, version);
    if (!document) return null;
    return this.createReference(model, version, { from: 'registry', document }, 'model-registry');
  }

  references(query: { model?: string; version?: string; pageSize?: number; pageToken?: string }) {
    return this.#d.references.list(query);
  }

  reference(id: string): Promise<ReferenceInfo> {
    return this.#d.references.get(id);
  }

  report(id: string): Promise<DriftReport> {
    return this.#d.reports.get(id);
  }

  reports(query: Parameters<ReportStore['list']>[0]) {
    return this.#d.reports.list(query);
  }
}
