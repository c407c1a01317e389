/** Row shapes of the deployment tables (migration 0400-deployment). */

export interface PredictionsTable {
  id: string;
  time: number;
  model_name: string;
  model_version: string;
  variant: string;
  /** 0/1. */
  shadow: number;
  probability: number;
  label: string;
  threshold: number;
  image_sha256: string;
  heatmap_method: string | null;
  /** JSON text: {@link PredictionStats}. */
  stats: string | null;
  /** JSON text: number[] (64-d projection of the pooled features). */
  embedding: string | null;
  latency_ms: number;
  request_id: string | null;
  actor: string;
  /** 0/1. */
  cached: number;
}

export interface DeploymentRoutingTable {
  model_name: string;
  /** JSON text: the routing config. */
  config: string;
  updated_by: string;
  updated_at: number;
}

/** A load every replica should hold (migration 0401). */
export interface DeploymentLoadsTable {
  model_name: string;
  /** A version number or an alias name. */
  ref: string;
  ref_kind: 'version' | 'alias';
  /** 0/1: served when a request names no version. */
  make_default: number;
  /** JSON text: batching overrides, or null. */
  batching: string | null;
  updated_by: string;
  updated_at: number;
}

/** One replica's heartbeat: what it serves (migration 0401). */
export interface DeploymentReplicasTable {
  id: string;
  host: string;
  /** JSON text: ServedModel[]. */
  serving: string;
  /** JSON text: the replica's serving problems. */
  problems: string;
  started_at: number;
  heartbeat_at: number;
}

export interface DeploymentTables {
  predictions: PredictionsTable;
  deployment_routing: DeploymentRoutingTable;
  deployment_loads: DeploymentLoadsTable;
  deployment_replicas: DeploymentReplicasTable;
}
