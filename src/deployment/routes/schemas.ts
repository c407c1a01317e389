import { z } from 'zod';

/** Zod schemas of the deployment API, shared by routes, OpenAPI (/docs) and clients. */

const modelRef = z.object({ name: z.string(), version: z.string() });

export const timingsSchema = z
  .object({
    decode: z.number().optional().describe('Not reported separately: decoding and resizing are one libvips pipeline (shrink-on-load), timed as preprocess'),
    preprocess: z.number().describe('Decode + resize + normalise in the worker pool, including its queue'),
    queue: z.number().describe('Wait in the dynamic batcher'),
    inference: z.number().describe('The model call of the batch this image ran in'),
    heatmap: z.number().describe('Class activation map (or occlusion sensitivity), plus PNG rendering when inline'),
    total: z.number(),
  })
  .describe('Milliseconds per stage');

export const predictionSchema = z.object({
  prediction_id: z.string(),
  model: modelRef,
  variant: z.string().describe("A/B variant ('A', 'B', …); 'default' without routing; 'pinned' when a version was named"),
  probability: z.number().describe('Calibrated probability of pneumonia'),
  label: z.enum(['PNEUMONIA', 'NORMAL']),
  threshold: z.number().describe("The model's stored decision threshold"),
  heatmap_url: z.string(),
  heatmap_method: z.enum(['cam', 'occlusion']).describe("'cam': class activation map from the features output; 'occlusion': occlusion sensitivity (model has no features output; slower)"),
  heatmap_png_base64: z.string().optional().describe('The heatmap overlay PNG, with ?heatmap=inline'),
  cached: z.boolean().describe('Same image bytes and model version answered from the prediction cache'),
  timings_ms: timingsSchema,
});

export const predictQuery = z.object({
  model: z.string().min(1).max(128).optional().describe('Model name (default: the default model)'),
  version: z.string().min(1).max(128).optional().describe('Pin a model version (bypasses A/B routing)'),
  heatmap: z.enum(['url', 'inline']).default('url').describe("'inline' also returns the heatmap PNG as base64"),
  client_key: z.string().min(1).max(256).optional().describe('Sticky A/B key (same as the x-client-key header)'),
});

export const batchItemSchema = z.object({
  index: z.number().int(),
  filename: z.string().optional(),
  hash: z.string().optional(),
  prediction: predictionSchema.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const batchResponseSchema = z.object({
  results: z.array(batchItemSchema),
  succeeded: z.number().int(),
  failed: z.number().int(),
});

export const storedBatchBody = z.object({
  hashes: z.array(z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 hex digest')).min(1).max(256),
});

export const predictionRecordSchema = z.object({
  id: z.string(),
  time: z.number(),
  model: modelRef,
  variant: z.string(),
  shadow: z.boolean(),
  probability: z.number(),
  label: z.enum(['PNEUMONIA', 'NORMAL']),
  threshold: z.number(),
  image_sha256: z.string(),
  heatmap_method: z.enum(['cam', 'occlusion']).nullable(),
  heatmap_url: z.string().nullable(),
  stats: z.record(z.string(), z.union([z.number(), z.string()])).nullable(),
  embedding: z.array(z.number()).nullable(),
  latency_ms: z.number(),
  request_id: z.string().nullable(),
  actor: z.string(),
  cached: z.boolean(),
});

export const idParams = z.object({ id: z.string().min(1).max(128) });

export const batchingSchema = z
  .object({
    max_batch_size: z.number().int().min(1).max(1024).optional(),
    max_queue_delay_ms: z.number().min(0).max(10_000).optional(),
    max_queue_size: z.number().int().min(1).max(100_000).optional(),
  })
  .describe('Dynamic batching knobs for this model version (Triton names)');

export const loadBody = z.union([
  z
    .object({
      path: z.string().min(1).max(4096).describe('Development: a local ONNX file under the import root or XRAY_HOME'),
      name: z.string().min(1).max(128).optional(),
      version: z.string().min(1).max(128).optional(),
      batching: batchingSchema.optional(),
      default: z.boolean().default(true),
    })
    .describe('Load a local ONNX file'),
  z.object({
    name: z.string().min(1).max(128),
    version: z.string().min(1).max(128).optional(),
    alias: z.string().min(1).max(64).optional().describe("Registry alias, default 'production' when no version is given"),
    batching: batchingSchema.optional(),
    default: z.boolean().default(true).describe('Serve this version when a request names none (hot swap)'),
  }),
]);

export const unloadBody = z.object({ name: z.string().min(1).max(128), version: z.string().min(1).max(128).optional() });

export const modelInfoSchema = z.object({
  name: z.string(),
  version: z.string(),
  alias: z.string().nullable(),
  default: z.boolean(),
  state: z.enum(['ready', 'retiring', 'disposed']),
  source: z.object({ kind: z.enum(['registry', 'file']), uri: z.string() }),
  sha256: z.string(),
  loaded_at: z.number(),
  input: z.object({ name: z.string(), datatype: z.string(), shape: z.array(z.number()) }),
  outputs: z.array(z.object({ name: z.string(), datatype: z.string(), shape: z.array(z.number()) })),
  threshold: z.number(),
  heatmap_method: z.enum(['cam', 'occlusion']),
  preprocessing: z.object({ size: z.number(), mode: z.string(), pad: z.number(), format: z.string(), hash: z.string(), verified: z.boolean() }),
  batching: z.object({ max_batch_size: z.number(), max_queue_delay_ms: z.number(), max_queue_size: z.number() }),
  execution_providers: z.array(z.string()),
  in_flight: z.number(),
  queue_depth: z.number(),
  stats: z.object({ batches: z.number(), items: z.number(), mean_batch_size: z.number() }),
  metadata: z.record(z.string(), z.string()),
});

export const routingVariantSchema = z.object({
  name: z.string().min(1).max(32).optional(),
  version: z.string().min(1).max(128),
  weight: z.number().min(0).optional(),
});

export const routingBody = z.object({
  model: z.string().min(1).max(128),
  mode: z.enum(['split', 'shadow']).default('split'),
  sticky: z.boolean().default(true).describe('Same x-client-key → same variant'),
  variants: z.array(routingVariantSchema).min(2).max(8),
});

export const routingSchema = z.object({
  model: z.string(),
  mode: z.enum(['split', 'shadow']),
  sticky: z.boolean(),
  variants: z.array(z.object({ name: z.string(), version: z.string(), weight: z.number() })),
  updated_by: z.string(),
  updated_at: z.number(),
});

export const servingProblemSchema = z
  .object({
    model: z.string(),
    alias: z.string(),
    wanted_version: z.string().nullable().describe('The version the alias points to (null: the alias no longer resolves)'),
    serving_version: z.string().nullable().describe('The version still answering requests (null: nothing serves)'),
    error: z.object({ code: z.string(), message: z.string() }),
    since: z.number(),
  })
  .describe('A followed alias this deployment could not load');

const desiredModelSchema = z.object({
  name: z.string(),
  version: z.string(),
  default: z.boolean().describe('Served when a request names no version'),
  reason: z.string().describe("'production alias', 'load' (POST /models/load, cluster-wide) or 'routing'"),
});

export const clusterViewSchema = z
  .object({
    converged: z.boolean().describe('Every live replica serves every desired version'),
    desired: z.array(desiredModelSchema).describe('What every replica should serve, aliases resolved now'),
    replicas: z.array(
      z.object({
        id: z.string().describe('host/pid/random of the replica process'),
        host: z.string(),
        self: z.boolean().describe('The replica that answered this request'),
        last_seen: z.number().describe('Its last heartbeat (epoch ms; every 15 s and after each load)'),
        converged: z.boolean(),
        missing: z.array(desiredModelSchema).describe('Desired versions it does not serve (yet)'),
        serving: z.array(z.object({ name: z.string(), version: z.string(), default: z.boolean(), alias: z.string().nullable() })),
        problems: z.array(z.unknown()),
      }),
    ),
    stale: z.array(z.object({ id: z.string(), host: z.string(), last_seen: z.number() })).describe('Replicas silent for three periods (stopped or cut off)'),
  })
  .describe('What every deployment replica serves against the desired state in the database');

export const modelsResponse = z.object({
  default_model: z.string(),
  models: z.array(modelInfoSchema),
  routing: z.array(routingSchema),
  problems: z.array(servingProblemSchema),
  cluster: clusterViewSchema.nullable().describe('Every replica of this deployment service (null when the database cannot be read)'),
});

export const canaryBody = z.object({
  name: z.string().min(1).max(128),
  version: z.string().regex(/^\d{1,9}$/, 'a registered version number').describe('Registered version number'),
});

export const canaryCheckSchema = z.object({
  name: z.enum(['resolve', 'load', 'contract', 'warm_up', 'reference']),
  passed: z.boolean(),
  message: z.string(),
});

export const canaryReportSchema = z.object({
  name: z.string(),
  version: z.string(),
  servable: z.boolean(),
  message: z.string(),
  input_size: z.number().nullable(),
  preprocessing: z.object({ size: z.number(), hash: z.string() }).nullable(),
  reference: z.object({ n: z.number(), max_abs_diff: z.number(), tolerance: z.number() }).nullable(),
  checks: z.array(canaryCheckSchema),
  duration_ms: z.number(),
});

// ——— Open Inference Protocol v2 ———

export const v2Tensor = z.object({
  name: z.string(),
  shape: z.array(z.number().int().min(0)),
  datatype: z.string(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  data: z.array(z.unknown()).describe('Numbers in row-major order, flat or nested'),
});

export const v2InferBody = z.object({
  id: z.string().max(256).optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  inputs: z.array(v2Tensor).min(1),
  outputs: z.array(z.object({ name: z.string(), parameters: z.record(z.string(), z.unknown()).optional() })).optional(),
});

export const v2InferResponse = z.object({
  model_name: z.string(),
  model_version: z.string(),
  id: z.string(),
  outputs: z.array(z.object({ name: z.string(), shape: z.array(z.number()), datatype: z.string(), data: z.array(z.number()) })),
});

export const v2ModelParams = z.object({ model: z.string().min(1).max(128) });
export const v2VersionParams = z.object({ model: z.string().min(1).max(128), version: z.string().min(1).max(128) });

export const v2MetadataResponse = z.object({
  name: z.string(),
  versions: z.array(z.string()),
  platform: z.string(),
  inputs: z.array(z.object({ name: z.string(), datatype: z.string(), shape: z.array(z.number()) })),
  outputs: z.array(z.object({ name: z.string(), datatype: z.string(), shape: z.array(z.number()) })),
});

/** What POST /explain accepts (the deployment's and monitoring's, which forwards to it). */
export const EXPLAIN_CONSUMES = ['application/json', 'multipart/form-data', 'image/png', 'image/jpeg', 'application/dicom', 'application/octet-stream'];

export const explainQuery = z.object({
  model: z.string().min(1).max(128).optional(),
  version: z.string().min(1).max(64).optional(),
  patch: z.coerce.number().int().min(1).max(1024).optional(),
  stride: z.coerce.number().int().min(1).max(1024).optional(),
});

export const explainJsonBody = z.object({
  prediction_id: z.string().min(1).max(200),
  patch: z.number().int().min(1).max(1024).optional(),
  stride: z.number().int().min(1).max(1024).optional(),
});

/** POST /explain: the data plane's heatmap plus an occlusion-sensitivity second opinion. */
const saliencyMapSchema = z.object({
  method: z.enum(['cam', 'occlusion']),
  h: z.number(),
  w: z.number(),
  grid: z.array(z.number()).describe('Row-major h×w values in [0, 1]'),
  png_base64: z.string().describe('Overlay on the preprocessed image, PNG, base64'),
});

export const explanationSchema = z.object({
  prediction_id: z.string().nullable(),
  model: z.object({ name: z.string(), version: z.string() }),
  probability: z.number(),
  threshold: z.number(),
  image_sha256: z.string(),
  heatmap: saliencyMapSchema.describe("The deployment service's heatmap: class activation map (occlusion for models without a features output)"),
  occlusion: saliencyMapSchema.extend({ patch: z.number(), stride: z.number(), baseline: z.number() }).describe('Occlusion sensitivity: the model-agnostic second opinion'),
  agreement: z
    .object({ spearman: z.number().nullable(), level: z.enum(['high', 'moderate', 'low', 'undefined']) })
    .describe('Do the two maps point at the same regions? Spearman rank correlation on a common 16×16 grid: >= 0.6 high, >= 0.3 moderate, below low (treat the heatmap with suspicion)'),
});


// ── Prediction queries: what monitoring reads of the prediction records (internal routes). ──
const statsRowSchema = z.record(z.string(), z.number());

export const windowQuerySchema = z.object({
  model: z.string().min(1).max(128),
  version: z.string().min(1).max(64),
  since: z.number().optional().describe('Inclusive lower bound on time (epoch ms)'),
  until: z.number().optional().describe('Inclusive upper bound on time'),
  after: z.number().optional().describe('Exclusive lower bound (rows after a reference window)'),
  lastN: z.number().int().positive().optional().describe('The most recent n rows (after the time filters)'),
  firstN: z.number().int().positive().optional().describe('The oldest n rows instead (reference windows)'),
  ids: z.array(z.string().min(1).max(200)).max(10_000).optional().describe('Only these prediction ids'),
  limit: z.number().int().positive().max(1_000_000).describe('Upper bound on rows read'),
  embeddingSample: z.number().int().min(0).max(1_000_000).describe('Embeddings of at most this many rows (uniform subsample)'),
  seed: z.union([z.string().max(200), z.number()]).optional(),
});

export const predictionWindowSchema = z.object({
  ids: z.array(z.string()),
  times: z.array(z.number()),
  probabilities: z.array(z.number()),
  thresholds: z.array(z.number()),
  stats: z.array(statsRowSchema),
  embeddings: z.array(z.array(z.number())),
});

export const monitoredPredictionSchema = z.object({
  id: z.string(),
  time: z.number(),
  model: z.string(),
  version: z.string(),
  variant: z.string().nullable(),
  shadow: z.boolean(),
  probability: z.number(),
  threshold: z.number(),
  latencyMs: z.number().nullable(),
  requestId: z.string().nullable(),
  imageSha256: z.string().nullable(),
  stats: statsRowSchema,
  embedding: z.array(z.number()).nullable(),
});

export const trafficGroupSchema = z.object({
  model: z.string(),
  version: z.string(),
  variant: z.string(),
  count: z.number(),
  positives: z.number(),
  probabilitySum: z.number(),
  latenciesMs: z.array(z.number()),
  firstTime: z.number(),
  lastTime: z.number(),
});

export const timelineQuerySchema = z.object({
  model: z.string().min(1).max(128).optional(),
  version: z.string().min(1).max(64).optional(),
  since: z.coerce.number(),
  until: z.coerce.number(),
  bucketMs: z.coerce.number().int().positive(),
});

export const timelineBucketSchema = z.object({
  t: z.number(),
  count: z.number(),
  positives: z.number(),
  cached: z.number(),
  latencyMeanMs: z.number().nullable(),
  latencyMaxMs: z.number().nullable(),
});
