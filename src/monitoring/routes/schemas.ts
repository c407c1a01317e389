import { z } from 'zod';
import type { Alert, Channel, DeadLetter, ReferenceInfo } from '../store/types.js';
import type { RollingPerformance } from '../service/performance.js';

/** Epoch milliseconds, or an ISO 8601 date-time string. */
export const timestamp = z
  .union([z.number().int().nonnegative(), z.string().min(1).max(64)])
  .describe('Epoch milliseconds or an ISO 8601 date-time');

/** Converts a {@link timestamp} value to epoch ms; NaN when the string does not parse. */
export function toEpochMs(v: number | string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  return /^\d+$/.test(v) ? Number(v) : Date.parse(v);
}

const modelName = z.string().min(1).max(200);
const versionString = z.union([z.string().min(1).max(64), z.number().int().positive()]).transform(String);

export const windowSchema = z
  .object({
    since: timestamp.optional(),
    until: timestamp.optional(),
    last_n: z.number().int().min(1).max(1_000_000).optional(),
  })
  .describe('A time range {since, until} (either end optional) or the most recent {last_n} predictions');

export const driftOptionsSchema = z
  .object({
    ks_max_rows: z.number().int().min(1).optional(),
    ks_alpha: z.number().gt(0).lt(1).optional(),
    wasserstein_threshold: z.number().gt(0).optional(),
    dataset_drift_share: z.number().gt(0).max(1).optional(),
    mmd_alpha: z.number().gt(0).lt(1).optional(),
    mmd_permutations: z.number().int().min(10).max(10000).optional(),
    mmd_samples: z.number().int().min(10).max(3000).optional(),
    classifier_auc_threshold: z.number().gt(0.5).lt(1).optional(),
    classifier_alpha: z.number().gt(0).lt(1).optional(),
    classifier_samples: z.number().int().min(10).max(5000).optional(),
    prediction_alpha: z.number().gt(0).lt(1).optional(),
    min_rows: z.number().int().min(2).optional(),
    features: z.array(z.string().min(1).max(100)).max(100).optional(),
  })
  .describe('Per-check overrides of the configured thresholds');

export const detectBody = z.object({
  model: modelName,
  version: versionString.optional(),
  reference_id: z.string().uuid().optional(),
  window: windowSchema.optional(),
  options: driftOptionsSchema.optional(),
});

const checkSchema = z.object({
  detector: z.enum(['data', 'embedding_mmd', 'embedding_classifier', 'prediction_positive_rate', 'prediction_distribution', 'performance']),
  method: z.string(),
  statistic: z.number().nullable(),
  p_value: z.number().nullable(),
  threshold: z.number(),
  rule: z.string(),
  drifted: z.boolean(),
  skipped: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

const featureSchema = z.object({
  feature: z.string(),
  method: z.enum(['ks', 'wasserstein']),
  statistic: z.number(),
  p_value: z.number().nullable(),
  threshold: z.number(),
  psi: z.number(),
  histogram: z
    .object({ edges: z.array(z.number()), reference: z.array(z.number()), current: z.number().array() })
    .optional()
    .describe("Shares of the reference and current values per bin; interior bin edges at the reference's deciles"),
  drifted: z.boolean(),
  n_reference: z.number(),
  n_current: z.number(),
});

export const reportSchema = z.object({
  id: z.string(),
  model: z.string(),
  version: z.string(),
  reference_id: z.string().nullable(),
  trigger: z.enum(['manual', 'schedule']),
  window: z.object({ since: z.number().nullable(), until: z.number().nullable(), last_n: z.number().nullable() }),
  observed: z.object({ first: z.number().nullable(), last: z.number().nullable() }),
  n_reference: z.number(),
  n_current: z.number(),
  verdict: z.enum(['drift', 'no_drift', 'insufficient_data']),
  drifted_detectors: z.array(z.string()),
  checks: z.array(checkSchema),
  features: z.array(featureSchema),
  options: z.record(z.string(), z.unknown()),
  duration_ms: z.number(),
  created_by: z.string(),
  created_at: z.number(),
});

export const reportQuery = z.object({
  model: z.string().max(200).optional(),
  version: z.string().max(64).optional(),
  verdict: z.enum(['drift', 'no_drift', 'insufficient_data']).optional(),
  page_size: z.coerce.number().int().min(1).max(1000).default(50),
  page_token: z.string().max(512).optional(),
});

export const referenceDocument = z
  .object({
    stats: z.array(z.record(z.string(), z.unknown())).optional(),
    rows: z.array(z.record(z.string(), z.unknown())).optional(),
    embeddings: z.array(z.array(z.number())).optional(),
    probabilities: z.array(z.number()).optional(),
    labels: z.array(z.union([z.number(), z.string(), z.boolean()])).optional(),
    threshold: z.number().optional(),
  })
  .passthrough()
  .describe('The reference.json format the registry ships: {stats (or rows), embeddings, probabilities, labels?, threshold?}');

export const referenceBody = z.object({
  model: modelName,
  version: versionString,
  reference: referenceDocument.optional().describe('Supplied rows; when absent the reference is built from prediction records'),
  window: windowSchema.extend({ first_n: z.number().int().min(1).max(1_000_000).optional() }).optional(),
  prediction_ids: z.array(z.string().min(1).max(200)).min(1).max(10000).optional(),
});

export const referenceSchema = z.object({
  id: z.string(),
  model: z.string(),
  version: z.string(),
  source: z.enum(['predictions', 'rows', 'auto', 'registry']),
  n_rows: z.number(),
  n_embeddings: z.number(),
  features: z.array(z.string()),
  window_since: z.number().nullable(),
  window_until: z.number().nullable(),
  summary: z.record(z.string(), z.number()).describe('positive_rate, mean_probability, threshold; with labels also auc, sensitivity, specificity'),
  created_by: z.string(),
  created_at: z.number(),
});

export function toReferenceView(r: ReferenceInfo): z.infer<typeof referenceSchema> {
  return {
    id: r.id,
    model: r.model,
    version: r.version,
    source: r.source,
    n_rows: r.nRows,
    n_embeddings: r.nEmbeddings,
    features: r.features,
    window_since: r.windowSince,
    window_until: r.windowUntil,
    summary: Object.fromEntries(
      Object.entries(r.summary)
        .filter(([, v]) => typeof v === 'number')
        .map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]),
    ) as Record<string, number>,
    created_by: r.createdBy,
    created_at: r.createdAt,
  };
}

export const feedbackBody = z.object({
  prediction_id: z.string().min(1).max(200),
  label: z.union([z.literal(0), z.literal(1), z.enum(['NORMAL', 'PNEUMONIA'])]).describe('Confirmed diagnosis: 1 / PNEUMONIA or 0 / NORMAL'),
});

export const feedbackResponse = z.object({
  prediction_id: z.string(),
  model: z.string(),
  version: z.string(),
  label: z.number(),
  probability: z.number(),
  replaced: z.boolean(),
});

export const performanceQuery = z.object({
  model: modelName,
  version: z.string().min(1).max(64),
  window: z.coerce.number().int().min(2).max(100000).optional(),
});

export const performanceSchema = z.object({
  model: z.string(),
  version: z.string(),
  n: z.number(),
  positives: z.number(),
  auc: z.number().nullable(),
  sensitivity: z.number().nullable(),
  specificity: z.number().nullable(),
  accuracy: z.number(),
  first: z.number().nullable(),
  last: z.number().nullable(),
});

export function toPerformanceView(model: string, version: string, p: RollingPerformance): z.infer<typeof performanceSchema> {
  return { model, version, ...p };
}

export const timelineQuery = z.object({
  model: modelName.optional(),
  version: z.string().min(1).max(64).optional(),
  since: timestamp.optional().describe('Default: 24 hours before until'),
  until: timestamp.optional().describe('Default: now'),
  bucket_s: z.coerce.number().int().min(1).max(31 * 86400).optional().describe('Bucket width in seconds (default: a round width giving at most 120 buckets)'),
});

export const timelineSchema = z.object({
  model: z.string().nullable(),
  version: z.string().nullable(),
  since: z.number().describe('Start of the first bucket (since, aligned down to the bucket width)'),
  until: z.number(),
  bucket_s: z.number(),
  total: z.number(),
  positives: z.number(),
  buckets: z.array(
    z.object({
      t: z.number().describe('Bucket start, epoch ms'),
      count: z.number(),
      positives: z.number().describe('Predictions at or above their threshold'),
      positive_rate: z.number().nullable(),
      cached: z.number(),
      latency_mean_ms: z.number().nullable(),
      latency_max_ms: z.number().nullable(),
    }),
  ),
});

const severity = z.enum(['info', 'warning', 'critical']);

export const alertSchema = z.object({
  id: z.string(),
  fingerprint: z.string(),
  rule: z.string(),
  model: z.string(),
  version: z.string(),
  severity,
  status: z.enum(['open', 'acknowledged', 'resolved']),
  summary: z.string(),
  details: z.record(z.string(), z.unknown()).nullable(),
  occurrences: z.number(),
  first_seen: z.number(),
  last_seen: z.number(),
  acknowledged_by: z.string().nullable(),
  acknowledged_at: z.number().nullable(),
  resolved_by: z.string().nullable(),
  resolved_at: z.number().nullable(),
});

export function toAlertView(a: Alert): z.infer<typeof alertSchema> {
  return {
    id: a.id,
    fingerprint: a.fingerprint,
    rule: a.rule,
    model: a.model,
    version: a.version,
    severity: a.severity,
    status: a.status,
    summary: a.summary,
    details: a.details,
    occurrences: a.occurrences,
    first_seen: a.firstSeen,
    last_seen: a.lastSeen,
    acknowledged_by: a.acknowledgedBy,
    acknowledged_at: a.acknowledgedAt,
    resolved_by: a.resolvedBy,
    resolved_at: a.resolvedAt,
  };
}

export const alertQuery = z.object({
  status: z.enum(['open', 'acknowledged', 'resolved', 'active']).optional().describe("'active' = open or acknowledged"),
  severity: severity.optional(),
  model: z.string().max(200).optional(),
  rule: z.string().max(100).optional(),
  page_size: z.coerce.number().int().min(1).max(1000).default(100),
  page_token: z.string().max(512).optional(),
});

const retrySchema = z
  .object({
    attempts: z.number().int().min(1).max(20).optional(),
    initial_delay_ms: z.number().int().min(1).max(3_600_000).optional(),
    max_delay_ms: z.number().int().min(1).max(3_600_000).optional(),
  })
  .describe('Delivery attempts and exponential backoff (defaults from XRAY_ALERT_RETRY_*)');

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');

export const channelBody = z.discriminatedUnion('kind', [
  z.object({
    name: z.string().min(1).max(100),
    kind: z.literal('webhook'),
    url: httpUrl,
    format: z.enum(['slack', 'alertmanager']).default('slack'),
    headers: z.record(z.string(), z.string().max(2000)).optional(),
    timeout_ms: z.number().int().min(100).max(60000).optional(),
    min_severity: severity.default('warning'),
    enabled: z.boolean().default(true),
    retry: retrySchema.optional(),
  }),
  z.object({
    name: z.string().min(1).max(100),
    kind: z.literal('email'),
    smtp_url: z.string().refine((u) => /^smtps?:\/\//i.test(u), 'must be an smtp:// or smtps:// URL'),
    from: z.string().min(3).max(320),
    to: z.array(z.string().min(3).max(320)).min(1).max(50),
    timeout_ms: z.number().int().min(100).max(60000).optional(),
    min_severity: severity.default('warning'),
    enabled: z.boolean().default(true),
    retry: retrySchema.optional(),
  }),
]);

export const channelSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(['webhook', 'email']),
  min_severity: severity,
  enabled: z.boolean(),
  from_env: z.boolean(),
  settings: z.record(z.string(), z.unknown()).describe('Secrets (header values, SMTP passwords) are redacted'),
  created_by: z.string(),
  created_at: z.number(),
});

function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '***';
  }
}

export function toChannelView(c: Channel): z.infer<typeof channelSchema> {
  const settings: Record<string, unknown> =
    c.kind === 'webhook'
      ? {
          url: redactUrl(c.settings.url),
          format: c.settings.format,
          ...(c.settings.headers ? { headers: Object.fromEntries(Object.keys(c.settings.headers).map((k) => [k, '***'])) } : {}),
          ...(c.settings.retry ? { retry: c.settings.retry } : {}),
        }
      : { smtp_url: redactUrl(c.settings.smtpUrl), from: c.settings.from, to: c.settings.to, ...(c.settings.retry ? { retry: c.settings.retry } : {}) };
  return {
    id: c.id,
    name: c.name,
    kind: c.kind,
    min_severity: c.minSeverity,
    enabled: c.enabled,
    from_env: c.fromEnv === true,
    settings,
    created_by: c.createdBy,
    created_at: c.createdAt,
  };
}

export const deadLetterSchema = z.object({
  id: z.string(),
  alert_id: z.string(),
  channel_id: z.string().nullable(),
  channel_name: z.string(),
  channel_kind: z.string(),
  attempts: z.number(),
  last_error: z.string(),
  payload: z.unknown(),
  created_at: z.number(),
});

export function toDeadLetterView(d: DeadLetter): z.infer<typeof deadLetterSchema> {
  return {
    id: d.id,
    alert_id: d.alertId,
    channel_id: d.channelId,
    channel_name: d.channelName,
    channel_kind: d.channelKind,
    attempts: d.attempts,
    last_error: d.lastError,
    payload: d.payload,
    created_at: d.createdAt,
  };
}

export const auditQuery = z.object({
  actor: z.string().max(200).optional(),
  action: z.string().max(200).optional(),
  resource: z.string().max(500).optional(),
  since: timestamp.optional(),
  until: timestamp.optional(),
  page_size: z.coerce.number().int().min(1).max(1000).default(100),
  page_token: z.string().max(64).optional(),
});

export const auditRecordSchema = z.object({
  seq: z.number(),
  id: z.string(),
  time: z.number(),
  actor: z.string(),
  action: z.string(),
  resource: z.string(),
  outcome: z.string(),
  request_id: z.string().nullable(),
  service: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
  prev_hash: z.string(),
  hash: z.string(),
});

export const verifySchema = z.object({
  ok: z.boolean(),
  checked: z.number(),
  first_broken_seq: z.number().optional(),
  reason: z.string().optional(),
});

export { explanationSchema } from '../../deployment/routes/schemas.js';

export const idParams = z.object({ id: z.string().min(1).max(200) });

/** A backup in the target (a summary of its signed manifest). */
export const backupSummarySchema = z.object({
  id: z.string(),
  created_at: z.string(),
  engine: z.enum(['sqlite', 'postgres']),
  platform_version: z.string(),
  schema_version: z.string().nullable(),
  database_bytes: z.number().int(),
  objects: z.number().int().describe('Objects the backup lists (shared with other backups in the target)'),
  object_bytes: z.number().int(),
  copied: z.number().int().describe('Objects this backup had to copy (incremental)'),
  rows: z.number().int().describe('Rows in all tables, counted in the snapshot'),
});

export const backupJobSchema = z.object({
  id: z.string(),
  trigger: z.enum(['api', 'schedule']),
  actor: z.string(),
  target: z.string(),
  status: z.enum(['running', 'succeeded', 'failed']),
  started_at: z.number(),
  finished_at: z.number().nullable(),
  backup: backupSummarySchema.nullable().describe('The backup taken, once succeeded'),
  pruned: z.object({ removed: z.array(z.string()), objects_removed: z.number().int() }).nullable().describe('What retention removed after the backup; null without a policy'),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});

export const backupListSchema = z.object({
  target: z.string(),
  schedule: z
    .object({ interval_h: z.number(), keep_daily: z.number().int(), keep_weekly: z.number().int() })
    .nullable()
    .describe('XRAY_BACKUP_*; null when no backups are scheduled'),
  items: z.array(backupSummarySchema).describe('Newest first'),
});
