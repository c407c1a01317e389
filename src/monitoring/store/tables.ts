/** Row shapes of the monitoring tables (migration 0500-monitoring) and of the core table it reads. */

export interface DriftReferencesTable {
  id: string;
  model_name: string;
  model_version: string;
  source: string;
  object_key: string;
  n_rows: number;
  n_embeddings: number;
  /** JSON text: string[]. */
  features: string;
  window_since: number | null;
  window_until: number | null;
  /** JSON text: ReferenceSummary. */
  summary: string | null;
  created_by: string;
  created_at: number;
}

export interface DriftReportsTable {
  id: string;
  model_name: string;
  model_version: string;
  reference_id: string | null;
  trigger: string;
  window_since: number | null;
  window_until: number | null;
  window_last_n: number | null;
  n_reference: number;
  n_current: number;
  verdict: string;
  /** JSON text: string[]. */
  drifted_detectors: string;
  /** JSON text: the whole DriftReport. */
  report: string;
  duration_ms: number;
  created_by: string;
  created_at: number;
}

export interface PredictionFeedbackTable {
  prediction_id: string;
  model_name: string;
  model_version: string;
  label: number;
  probability: number;
  threshold: number;
  predicted_at: number;
  actor: string;
  created_at: number;
}

export interface AlertsTable {
  id: string;
  fingerprint: string;
  rule: string;
  model_name: string;
  model_version: string;
  severity: string;
  status: string;
  summary: string;
  /** JSON text. */
  details: string | null;
  occurrences: number;
  first_seen: number;
  last_seen: number;
  acknowledged_by: string | null;
  acknowledged_at: number | null;
  resolved_by: string | null;
  resolved_at: number | null;
}

export interface AlertChannelsTable {
  id: string;
  name: string;
  kind: string;
  /** JSON text: channel settings (url, format / smtp url, from, to, retry). */
  settings: string;
  min_severity: string;
  enabled: number;
  created_by: string;
  created_at: number;
}

export interface AlertDeadLettersTable {
  id: string;
  alert_id: string;
  channel_id: string | null;
  channel_name: string;
  channel_kind: string;
  attempts: number;
  last_error: string;
  /** JSON text: the payload that could not be delivered. */
  payload: string;
  created_at: number;
}

export interface MonitoringTables {
  drift_references: DriftReferencesTable;
  drift_reports: DriftReportsTable;
  prediction_feedback: PredictionFeedbackTable;
  alerts: AlertsTable;
  alert_channels: AlertChannelsTable;
  alert_dead_letters: AlertDeadLettersTable;
  /** Owned by the core audit log; read-only here. */
  audit_log: { seq: number; time: number; service: string | null; action: string; outcome: string };
}
