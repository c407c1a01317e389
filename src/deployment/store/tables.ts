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

export interface DeploymentTables {
  predictions: PredictionsTable;
  deployment_routing: DeploymentRoutingTable;
}
