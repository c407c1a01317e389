/** What the deployment service's client offers other services (import-free: types only). */
import type { z } from 'zod';
import type {
  canaryReportSchema,
  explanationSchema,
  monitoredPredictionSchema,
  predictionWindowSchema,
  timelineBucketSchema,
  timelineQuerySchema,
  trafficGroupSchema,
  windowQuerySchema,
} from '../routes/schemas.js';

/**
 * A canary load: the version loaded into a session of its own (never served), checked against
 * the serving contract and its recorded reference outputs, then released. The type is the route's
 * response schema, so the in-process and HTTP clients return the same shape by construction.
 */
export type CanaryReport = z.infer<typeof canaryReportSchema>;
export type CanaryCheck = CanaryReport['checks'][number];
export type CanaryCheckName = CanaryCheck['name'];

/** An explanation: the data plane's heatmap plus occlusion sensitivity (the route's response schema). */
export type ExplanationView = z.infer<typeof explanationSchema>;

/** What to explain: a logged prediction, or an uploaded image with a registry model version. */
export type ExplainRequest =
  | { predictionId: string; patch?: number; stride?: number }
  | { image: Uint8Array; model?: string | null; version?: string | null; patch?: number; stride?: number };

/** How a call is made on behalf of someone: their credential travels with it (HTTP). */
export interface CallContext {
  authorization?: string;
  requestId?: string;
  actor?: string;
}

/** The deployment service, as other services see it. */
export interface DeploymentClient {
  /** 'in-process' or the base URL it calls. */
  readonly target: string;
  /**
   * Canary-loads a registered version without serving it.
   * @throws AppError MODEL_NOT_FOUND for an unknown model/version; SERVICE_UNAVAILABLE when the
   *   deployment cannot be reached (details.unreachable) or has no registry.
   */
  canary(name: string, version: number | string, ctx?: CallContext): Promise<CanaryReport>;
  /**
   * Explains a logged prediction or an uploaded image (KServe's DataPlane.explain). Uploads are
   * audited, not logged as predictions.
   * @throws AppError NOT_FOUND (unknown prediction, no stored heatmap, unknown model), INVALID_INPUT,
   *   UNSUPPORTED_MEDIA_TYPE / UNPROCESSABLE for an image that does not decode.
   */
  explain(request: ExplainRequest, ctx?: CallContext): Promise<ExplanationView>;
}

/** Key under which an in-process deployment offers its client (LocalServices). */
export const DEPLOYMENT_LOCAL_KEY = 'deployment.client';

/** One prediction as monitoring sees it (stats flattened to numeric features). */
export type MonitoredPrediction = z.infer<typeof monitoredPredictionSchema>;
/** A window of predictions in columnar form, oldest first. */
export type PredictionWindow = z.infer<typeof predictionWindowSchema>;
export type WindowQuery = z.infer<typeof windowQuerySchema>;
/** Per (model, version, variant) aggregates of recent predictions, for the gauges. */
export type TrafficGroup = z.infer<typeof trafficGroupSchema>;
/** Predictions per time bucket (shadow calls excluded). */
export type TimelineQuery = z.infer<typeof timelineQuerySchema>;
export type TimelineBucket = z.infer<typeof timelineBucketSchema>;

/**
 * Read-only queries over the deployment's prediction records, for monitoring (drift windows,
 * traffic, gauges, the drift schedule). Nobody else reads the deployment's table.
 */
export interface PredictionQueries {
  /** Predictions of one model version selected by time and/or count, oldest first. */
  window(query: WindowQuery): Promise<PredictionWindow>;
  /** One prediction, or null. */
  get(id: string): Promise<MonitoredPrediction | null>;
  /** The model version with the most recent prediction, or null when the model has none. */
  latestVersion(model: string): Promise<string | null>;
  /** Distinct (model, version) pairs with a prediction at or after `since`. */
  activeVersions(since: number): Promise<{ model: string; version: string }[]>;
  /** Aggregates of predictions in [since, until] (at most `limit` rows read). */
  traffic(since: number, until: number, limit?: number): Promise<TrafficGroup[]>;
  /** Volume, positives and latency per bucket of [since, until), every bucket present. */
  timeline(query: TimelineQuery): Promise<TimelineBucket[]>;
}

/** Key under which an in-process deployment offers its prediction queries (LocalServices). */
export const PREDICTION_QUERIES_LOCAL_KEY = 'deployment.prediction-queries';
