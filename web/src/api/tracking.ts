import type { z } from 'zod';
import { request } from './http.js';
import type { mlflowMetric, mlflowRun } from '../../../src/model-registry/routes/mlflow/wire.js';

/**
 * Experiment tracking through the registry's MLflow REST API (/api/2.0/mlflow). Types are
 * inferred from the route schemas (src/model-registry/routes/mlflow/wire.ts).
 */
export type TrackedRun = z.infer<typeof mlflowRun>;
export type MetricPoint = z.infer<typeof mlflowMetric>;
export interface Experiment {
  experiment_id: string;
  name: string;
}

const MLFLOW = '/api/2.0/mlflow';

export function listExperiments(): Promise<{ experiments?: Experiment[] }> {
  return request('model-registry', `${MLFLOW}/experiments/search`, { query: { max_results: 200 } });
}

/** Runs of the experiments, newest first; `filter` is MLflow's search syntax (metrics.val_auc > 0.9 and params.model = 'x'). */
export function searchRuns(experimentIds: string[], filter: string): Promise<{ runs?: TrackedRun[] }> {
  return request('model-registry', `${MLFLOW}/runs/search`, {
    method: 'POST',
    json: { experiment_ids: experimentIds, filter: filter.trim() || undefined, max_results: 1000, order_by: ['attributes.start_time DESC'] },
  });
}

/** Every logged point of one metric of a run, in step order. */
export async function metricHistory(runId: string, key: string): Promise<MetricPoint[]> {
  const r = await request<{ metrics?: MetricPoint[] }>('model-registry', `${MLFLOW}/metrics/get-history`, { query: { run_id: runId, metric_key: key, max_results: 25000 } });
  return (r.metrics ?? []).slice().sort((a, b) => a.step - b.step || a.timestamp - b.timestamp);
}
