/** Domain types of the monitoring service, shared by stores, services and routes. */

export type { Page, PageRequest } from '../../core/db/page.js';

/** Numeric per-image statistics of one prediction (nested objects flattened to dotted keys). */
export type { StatsRow } from '../../core/ml/flatten-stats.js';
import type { StatsRow } from '../../core/ml/flatten-stats.js';

export type Severity = 'info' | 'warning' | 'critical';
export const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];
export const severityRank = (s: Severity): number => SEVERITIES.indexOf(s);

/** The reference side of drift checks; stored as JSON in the object store. */
export interface ReferenceData {
  stats: StatsRow[];
  embeddings: number[][];
  probabilities: number[];
  /** Ground-truth labels (0/1) aligned with `probabilities`, when known: gives a reference AUC. */
  labels?: number[];
  /** Decision threshold the probabilities were made with. */
  threshold?: number;
}

export type ReferenceSource = 'predictions' | 'rows' | 'auto' | 'registry';

export interface ReferenceSummary {
  positiveRate?: number;
  meanProbability?: number;
  threshold?: number;
  auc?: number;
  sensitivity?: number;
  specificity?: number;
}

export interface ReferenceInfo {
  id: string;
  model: string;
  version: string;
  source: ReferenceSource;
  objectKey: string;
  nRows: number;
  nEmbeddings: number;
  features: string[];
  windowSince: number | null;
  windowUntil: number | null;
  summary: ReferenceSummary;
  createdBy: string;
  createdAt: number;
}

export type Detector =
  | 'data'
  | 'embedding_mmd'
  | 'embedding_classifier'
  | 'prediction_positive_rate'
  | 'prediction_distribution'
  | 'performance';

/** One detector's outcome in a drift report. */
export interface DriftCheck {
  detector: Detector;
  method: string;
  statistic: number | null;
  p_value: number | null;
  threshold: number;
  /** How the statistic is compared with the threshold. */
  rule: string;
  drifted: boolean;
  /** Set when the detector did not run (too few rows, no embeddings, no labels…). */
  skipped?: string;
  details?: Record<string, unknown>;
}

/** One image-statistic feature in a drift report (KS or normed Wasserstein, PSI reported). */
export interface FeatureCheck {
  feature: string;
  method: 'ks' | 'wasserstein';
  statistic: number;
  p_value: number | null;
  threshold: number;
  psi: number;
  /** Reference vs current shares over the PSI's reference-decile bins (absent in reports stored before it existed). */
  histogram?: { edges: number[]; reference: number[]; current: number[] };
  drifted: boolean;
  n_reference: number;
  n_current: number;
}

export type Verdict = 'drift' | 'no_drift' | 'insufficient_data';

export interface DriftWindow {
  since: number | null;
  until: number | null;
  last_n: number | null;
}

/** A stored drift report (snake_case: it is also the API document). */
export interface DriftReport {
  id: string;
  model: string;
  version: string;
  reference_id: string | null;
  trigger: 'manual' | 'schedule';
  window: DriftWindow;
  /** First and last prediction time actually in the current window. */
  observed: { first: number | null; last: number | null };
  n_reference: number;
  n_current: number;
  verdict: Verdict;
  drifted_detectors: Detector[];
  checks: DriftCheck[];
  features: FeatureCheck[];
  options: Record<string, number | string | string[]>;
  duration_ms: number;
  created_by: string;
  created_at: number;
}

export type AlertStatus = 'open' | 'acknowledged' | 'resolved';

export interface Alert {
  id: string;
  fingerprint: string;
  rule: string;
  model: string;
  version: string;
  severity: Severity;
  status: AlertStatus;
  summary: string;
  details: Record<string, unknown> | null;
  occurrences: number;
  firstSeen: number;
  lastSeen: number;
  acknowledgedBy: string | null;
  acknowledgedAt: number | null;
  resolvedBy: string | null;
  resolvedAt: number | null;
}

export interface RetryPolicy {
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export interface WebhookSettings {
  url: string;
  format: 'slack' | 'alertmanager';
  headers?: Record<string, string>;
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
}

export interface EmailSettings {
  smtpUrl: string;
  from: string;
  to: string[];
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
}

export type ChannelInput =
  | { name: string; kind: 'webhook'; minSeverity: Severity; enabled: boolean; settings: WebhookSettings }
  | { name: string; kind: 'email'; minSeverity: Severity; enabled: boolean; settings: EmailSettings };

export type Channel = ChannelInput & { id: string; createdBy: string; createdAt: number; fromEnv?: boolean };

export interface DeadLetter {
  id: string;
  alertId: string;
  channelId: string | null;
  channelName: string;
  channelKind: string;
  attempts: number;
  lastError: string;
  payload: unknown;
  createdAt: number;
}

export interface Feedback {
  predictionId: string;
  model: string;
  version: string;
  label: 0 | 1;
  probability: number;
  threshold: number;
  predictedAt: number;
  actor: string;
  createdAt: number;
}
