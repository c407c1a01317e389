import { z } from 'zod';

/**
 * MLflow's run and metric shapes (protobuf JSON) as the tracking routes answer them. Import-free
 * apart from zod, so the web UI infers its run types from here.
 */

const kv = z.object({ key: z.string(), value: z.string() });
const metricValue = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]);
export const mlflowMetric = z.object({ key: z.string(), value: metricValue, timestamp: z.number(), step: z.number() });
export const mlflowRunInfo = z.object({
  run_id: z.string(),
  run_uuid: z.string(),
  experiment_id: z.string(),
  run_name: z.string(),
  user_id: z.string(),
  status: z.string(),
  start_time: z.number(),
  end_time: z.number().optional(),
  artifact_uri: z.string(),
  lifecycle_stage: z.string(),
});
const datasetInput = z.object({
  tags: z.array(kv),
  dataset: z.object({ name: z.string(), digest: z.string(), source_type: z.string(), source: z.string(), schema: z.string().optional(), profile: z.string().optional() }),
});
export const mlflowRun = z.object({
  info: mlflowRunInfo,
  data: z.object({ metrics: z.array(mlflowMetric), params: z.array(kv), tags: z.array(kv) }),
  inputs: z.object({ dataset_inputs: z.array(datasetInput) }),
});
