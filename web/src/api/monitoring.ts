import { request } from './http.js';
import type { Label } from './deployment.js';
import type { z } from 'zod';
import type { DriftReport, Verdict } from '../../../src/monitoring/store/types.js';
import type { alertSchema, auditRecordSchema, explanationSchema, feedbackResponse, performanceSchema, timelineSchema } from '../../../src/monitoring/routes/schemas.js';

/** Client of the monitoring service; response types are inferred from its route schemas (src/monitoring/routes/schemas.ts). */

export type FeedbackResult = z.infer<typeof feedbackResponse>;

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

export type Alert = z.infer<typeof alertSchema>;
export type AlertStatus = Alert['status'];

export function alerts(query: { status?: AlertStatus | 'active'; page_size?: number } = {}): Promise<Page<Alert>> {
  return request<Page<Alert>>('monitoring', '/alerts', { query });
}

export function acknowledgeAlert(id: string): Promise<Alert> {
  return request<Alert>('monitoring', `/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST' });
}

export function resolveAlert(id: string): Promise<Alert> {
  return request<Alert>('monitoring', `/alerts/${encodeURIComponent(id)}/resolve`, { method: 'POST' });
}

export type AuditRecord = z.infer<typeof auditRecordSchema>;

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

export type Performance = z.infer<typeof performanceSchema>;

export function performance(model: string, version: string): Promise<Performance> {
  return request<Performance>('monitoring', '/performance', { query: { model, version } });
}

export type Timeline = z.infer<typeof timelineSchema>;

/** Prediction volume, positive rate and latency per time bucket (viewer role; shadow calls excluded). */
export function traffic(query: { model?: string; since?: number; until?: number; bucket_s?: number } = {}): Promise<Timeline> {
  return request<Timeline>('monitoring', '/traffic', { query });
}

export function monitoringMetricsText(): Promise<string> {
  return request<string>('monitoring', '/metrics');
}


export type Explanation = z.infer<typeof explanationSchema>;
export type SaliencyMap = Explanation['heatmap'];

/** Class-activation heatmap plus occlusion sensitivity (a model-agnostic second opinion) of a logged prediction. */
export function explainPrediction(predictionId: string): Promise<Explanation> {
  return request<Explanation>('monitoring', '/explain', { method: 'POST', json: { prediction_id: predictionId } });
}
