import { request } from './http.js';
import type { Label } from './deployment.js';
import type { DriftReport, Verdict } from '../../../src/monitoring/store/types.js';

/** Client of the monitoring service (src/monitoring/routes/schemas.ts). */

export interface FeedbackResult {
  prediction_id: string;
  model: string;
  version: string;
  label: number;
  probability: number;
  replaced: boolean;
}

export function sendFeedback(predictionId: string, label: Label): Promise<FeedbackResult> {
  return request<FeedbackResult>('monitoring', '/feedback', { method: 'POST', json: { prediction_id: predictionId, label } });
}

// The drift report is the monitoring service's stored document; its types are shared, not restated.
export type { Detector, DriftCheck, FeatureCheck as DriftFeature, Verdict, DriftReport } from '../../../src/monitoring/store/types.js';

export interface Page<T> {
  items: T[];
  next_page_token?: string;
}

export function driftReports(query: { model?: string; verdict?: Verdict; page_size?: number; page_token?: string } = {}): Promise<Page<DriftReport>> {
  return request<Page<DriftReport>>('monitoring', '/drift/reports', { query });
}

export function detectDrift(body: { model: string; version?: string; window?: { last_n?: number } }): Promise<DriftReport> {
  return request<DriftReport>('monitoring', '/drift/detect', { method: 'POST', json: body });
}

export type AlertStatus = 'open' | 'acknowledged' | 'resolved';

export interface Alert {
  id: string;
  fingerprint: string;
  rule: string;
  model: string;
  version: string;
  severity: 'info' | 'warning' | 'critical';
  status: AlertStatus;
  summary: string;
  details: Record<string, unknown> | null;
  occurrences: number;
  first_seen: number;
  last_seen: number;
  acknowledged_by: string | null;
  acknowledged_at: number | null;
  resolved_by: string | null;
  resolved_at: number | null;
}

export function alerts(query: { status?: AlertStatus | 'active'; page_size?: number } = {}): Promise<Page<Alert>> {
  return request<Page<Alert>>('monitoring', '/alerts', { query });
}

export function acknowledgeAlert(id: string): Promise<Alert> {
  return request<Alert>('monitoring', `/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST' });
}

export function resolveAlert(id: string): Promise<Alert> {
  return request<Alert>('monitoring', `/alerts/${encodeURIComponent(id)}/resolve`, { method: 'POST' });
}

export interface AuditRecord {
  seq: number;
  id: string;
  time: number;
  actor: string;
  action: string;
  resource: string;
  outcome: string;
  request_id: string | null;
  service: string | null;
  details: Record<string, unknown> | null;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
  resource?: string;
  since?: string | number;
  until?: string | number;
  page_size?: number;
  page_token?: string;
}

export function audit(query: AuditQuery = {}): Promise<Page<AuditRecord>> {
  return request<Page<AuditRecord>>('monitoring', '/audit', { query });
}

export interface Performance {
  model: string;
  version: string;
  n: number;
  positives: number;
  auc: number | null;
  sensitivity: number | null;
  specificity: number | null;
  accuracy: number;
}

export function performance(model: string, version: string): Promise<Performance> {
  return request<Performance>('monitoring', '/performance', { query: { model, version } });
}

export function monitoringMetricsText(): Promise<string> {
  return request<string>('monitoring', '/metrics');
}

export interface SaliencyMap {
  method: 'cam' | 'occlusion';
  h: number;
  w: number;
  grid: number[];
  /** Overlay on the preprocessed image. */
  png_base64: string;
}

export interface Explanation {
  prediction_id: string | null;
  model: { name: string; version: string };
  probability: number;
  threshold: number;
  image_sha256: string;
  heatmap: SaliencyMap;
  occlusion: SaliencyMap & { patch: number; stride: number; baseline: number };
}

/** Class-activation heatmap plus occlusion sensitivity (a model-agnostic second opinion) of a logged prediction. */
export function explainPrediction(predictionId: string): Promise<Explanation> {
  return request<Explanation>('monitoring', '/explain', { method: 'POST', json: { prediction_id: predictionId } });
}
