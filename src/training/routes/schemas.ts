import { z } from 'zod';
import { augmentationOverridesSchema } from '../../core/ml/augmentation.js';
import { ID_PATTERN } from '../service/ids.js';
import { MODEL_NAMES } from '../service/model-names.js';

// The web UI infers its types from these schemas: keep this module free of Node imports.

export { MODEL_NAMES };


/** The smallest side of an input crop, as a fraction of the input (trainer/protocol.py MIN_CROP_SIDE). */
export const MIN_CROP_SIDE = 0.3;
const cropFraction = z.number().min(0).max(1);

/** A box in fractions of the square model input: 0 ≤ top < bottom ≤ 1, 0 ≤ left < right ≤ 1, each side ≥ {@link MIN_CROP_SIDE}. */
export const inputCropSchema = z
  .strictObject({ top: cropFraction, bottom: cropFraction, left: cropFraction, right: cropFraction })
  .refine((b) => b.bottom - b.top >= MIN_CROP_SIDE - 1e-9, { message: `bottom - top must be at least ${MIN_CROP_SIDE} of the input`, path: ['bottom'] })
  .refine((b) => b.right - b.left >= MIN_CROP_SIDE - 1e-9, { message: `right - left must be at least ${MIN_CROP_SIDE} of the input`, path: ['right'] });
export type InputCrop = z.infer<typeof inputCropSchema>;

/** Training hyper-parameters (every field optional; the worker fills in its defaults). */
export const hyperparametersSchema = z
  .strictObject({
    epochs: z.number().int().min(1).max(10_000),
    batch_size: z.number().int().min(2).max(65_536),
    lr: z.number().gt(0).lte(10),
    weight_decay: z.number().min(0).max(10),
    scheduler: z.enum(['cosine', 'onecycle', 'none']),
    warmup_epochs: z.number().min(0).max(10_000),
    balance: z.enum(['loss', 'sampler', 'none']),
    early_stopping_patience: z.number().int().min(0).nullable(),
    dropout: z.number().min(0).max(0.95),
    label_smoothing: z.number().min(0).max(0.5),
    mixup_alpha: z.number().min(0).max(1).describe('Mixup: per batch, images and targets mixed with lambda ~ Beta(alpha, alpha); 0 = off.'),
    cutmix_alpha: z.number().min(0).max(1).describe('CutMix: per batch, a box of area ~(1 - lambda) pasted from another image, lambda ~ Beta(alpha, alpha); 0 = off. With mixup too, each batch picks one at p = 0.5.'),
    max_train_batches: z.number().int().min(1).nullable(),
    input_crop: inputCropSchema
      .nullable()
      .describe('Train on a box of the input: the model crops each (letterboxed, square) input to it and resizes the crop back to the full input size before the backbone; the ONNX still takes the whole image. null = no crop.'),
  })
  .partial();

/** Overrides of the dataset version's augmentation spec (the platform's one augmentation contract). */
export const augmentationSchema = augmentationOverridesSchema;

const versionId = z.string().min(1).max(128).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ - only');
const experimentName = z.string().min(1).max(200);

const jobBase = {
  dataset_version: versionId.optional().describe('Dataset version id (data pipeline); exported for the worker and cached.'),
  dataset_dir: z.string().min(1).max(1024).optional().describe('Dev/test: an existing dataset export folder inside XRAY_HOME or XRAY_IMPORT_ROOT, instead of dataset_version.'),
  model: z.enum(MODEL_NAMES).default('compact_cnn'),
  input_size: z.number().int().min(16).max(1024).optional().describe('Square input side; default the export\'s preprocessing size.'),
  hyperparameters: hyperparametersSchema.default({}),
  augmentation: augmentationSchema.optional(),
  seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
  threshold: z.strictObject({ method: z.enum(['youden', 'sensitivity', 'robust']).optional(), target_sensitivity: z.number().gt(0).lte(1).optional() }).optional(),
  test_dataset_versions: z.array(versionId).max(8).optional().describe('Extra dataset versions evaluated as external test sets.'),
  export: z
    .strictObject({
      onnx: z.boolean().optional(),
      opset: z.number().int().min(13).max(25).optional(),
      int8: z.boolean().optional().describe('Also export a statically quantized INT8 (QDQ) variant, registered beside the FP32 model once it passes its parity gate on the validation split.'),
      int8_calibration: z.number().int().min(8).max(4096).optional().describe('Training-split images the INT8 activation ranges are calibrated on (default 256).'),
    })
    .refine((e) => !(e.int8 && e.onnx === false), { message: 'export.int8 needs the ONNX export (export.onnx true)', path: ['int8'] })
    .optional(),
  experiment: experimentName.optional().describe("Tracking experiment (default 'pneumonia')."),
};

/** Data-parallel training: the worker runs as `processes` torchrun processes (gloo on CPU, NCCL with one GPU each). */
export const distributedSchema = z.strictObject({
  processes: z.number().int().min(1).max(64).describe('Processes for this one job; hyperparameters.batch_size stays the global batch, split between them.'),
});

export const trainRequestSchema = z.strictObject({
  ...jobBase,
  distributed: distributedSchema.optional().describe('Train across several processes on this machine (torch.distributed, launched by torchrun).'),
  register_as: z.string().min(1).max(200).optional().describe('Register the model under this name when the job succeeds.'),
  ensemble_of: z
    .array(z.string().regex(ID_PATTERN, 'not a training job id'))
    .min(2)
    .max(5)
    .optional()
    .describe(
      "Combine these succeeded jobs (2–5, same dataset version and input size; architectures may differ) into one served model instead of training: mean of the members' logits, temperature and threshold fitted on val, one ONNX graph. The dataset is the members'; training options are refused.",
    ),
});
export type TrainRequest = z.infer<typeof trainRequestSchema>;

const distribution = z.union([
  z.strictObject({ type: z.literal('float'), low: z.number(), high: z.number(), log: z.boolean().optional(), step: z.number().positive().optional() }),
  z.strictObject({ type: z.literal('int'), low: z.number().int(), high: z.number().int(), log: z.boolean().optional(), step: z.number().int().positive().optional() }),
  z.strictObject({ type: z.literal('categorical'), choices: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).min(1) }),
]);

export const optimizeRequestSchema = z.strictObject({
  ...jobBase,
  search_space: z
    .record(z.string(), distribution)
    .refine((s) => Object.keys(s).length > 0, 'search_space needs at least one parameter')
    .describe("Parameters to search: hyper-parameter names, 'model', 'input_size', 'seed' or 'augmentation.<name>'."),
  n_trials: z.number().int().min(1).max(1000).default(4),
  pruner: z.enum(['median', 'hyperband', 'none']).default('median'),
  concurrency: z.number().int().min(1).max(16).default(1).describe('Trials run in parallel inside the worker.'),
  direction: z.enum(['maximize', 'minimize']).optional(),
  pruner_startup_trials: z.number().int().min(0).optional(),
  pruner_warmup_epochs: z.number().int().min(0).optional(),
  timeout_s: z.number().positive().optional(),
});
export type OptimizeRequest = z.infer<typeof optimizeRequestSchema>;

export const jobIdParams = z.object({ id: z.string().regex(ID_PATTERN, 'not a training job id') });
export const artifactParams = jobIdParams.extend({ kind: z.string().regex(/^[a-z_]{1,40}$/) });

const progress = z.object({
  phase: z.string(),
  epoch: z.number(),
  epochs: z.number(),
  step: z.number(),
  steps: z.number(),
  fraction: z.number(),
});

const artifact = z.object({ key: z.string(), sha256: z.string(), bytes: z.number(), content_type: z.string(), file: z.string() });
const anyRecord = z.record(z.string(), z.unknown());

export const jobView = z.object({
  job_id: z.string(),
  state: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']),
  model: z.string(),
  input_size: z.number().nullable(),
  dataset_version: z.string().nullable(),
  experiment: z.string(),
  attempt: z.number(),
  progress: progress.nullable(),
  current: anyRecord.nullable().describe('Metrics of the newest epoch.'),
  history: z.array(anyRecord).optional().describe('Every epoch (GET /train/{id} only).'),
  eta_seconds: z.number().nullable(),
  images_per_sec: z.number().nullable(),
  artifacts: z.record(z.string(), artifact),
  metrics: anyRecord.nullable().describe('Validation evaluation at the chosen threshold.'),
  test_metrics: anyRecord.nullable(),
  threshold: z.number().nullable(),
  best_epoch: z.number().nullable(),
  best_val_auc: z.number().nullable(),
  parity: anyRecord.nullable().describe('ONNX vs PyTorch: max_abs_diff of the probability output.'),
  last_checkpoint: z.object({ epoch: z.number(), step: z.number(), attempt: z.number(), stored: z.boolean() }).nullable(),
  worker: anyRecord.nullable(),
  run_id: z.string().nullable(),
  registered: anyRecord.nullable(),
  error: z.string().nullable(),
  request: anyRecord,
  created_by: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
  finished_at: z.string().nullable(),
});

export const jobList = z.object({ jobs: z.array(jobView), next_page_token: z.string().optional() });

export const eventView = z.object({ seq: z.number(), attempt: z.number(), event: z.string(), time: z.string(), data: anyRecord });
export const eventsResponse = z.object({ events: z.array(eventView), next_after: z.number(), done: z.boolean(), state: z.string().nullable() });
export const eventsQuery = z.object({
  after: z.coerce.number().int().min(0).default(0).describe('Return events with seq greater than this.'),
  wait: z.coerce.number().min(0).max(60).default(0).describe('Long poll: seconds to wait for a new event.'),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
});

export const trialView = z.object({
  trial: z.number(),
  state: z.string(),
  value: z.number().nullable(),
  params: anyRecord,
  history: z.array(anyRecord),
  pruned_epoch: z.number().nullable(),
  best_epoch: z.number().nullable(),
  metrics: anyRecord.nullable(),
  run_id: z.string().nullable(),
  error: z.string().nullable(),
});

export const studyView = z.object({
  study_id: z.string(),
  state: z.string(),
  dataset_version: z.string().nullable(),
  experiment: z.string(),
  n_trials: z.number(),
  pruner: z.string(),
  concurrency: z.number(),
  search_space: anyRecord,
  best: z.object({ trial: z.number(), value: z.number().nullable(), params: anyRecord }).nullable(),
  trials: z.array(trialView).optional(),
  error: z.string().nullable(),
  created_by: z.string(),
  created_at: z.string(),
  finished_at: z.string().nullable(),
});
export const studyList = z.object({ studies: z.array(studyView), next_page_token: z.string().optional() });

export const experimentView = z.object({
  experiment_id: z.string(),
  name: z.string(),
  creation_time: z.number(),
  last_update_time: z.number(),
  tags: z.array(z.object({ key: z.string(), value: z.string() })),
});
export const experimentList = z.object({ experiments: z.array(experimentView), source: z.string(), next_page_token: z.string().optional() });
export const runList = z.object({ runs: z.array(anyRecord), next_page_token: z.string().optional() });

export const runtimeView = z.object({
  available: z.boolean(),
  python: z.string().nullable(),
  torch: z.string().nullable(),
  optuna: z.string().nullable(),
  runner: z.string(),
  tracking: z.string(),
  error: z.string().nullable(),
});

export const registerRequest = z.strictObject({ name: z.string().min(1).max(200) });
export const registerResponse = z.object({ job_id: z.string(), registered: anyRecord });
