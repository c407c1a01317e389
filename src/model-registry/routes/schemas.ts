import { z } from 'zod';
import { STAGES, type Stage } from '../store/stages.js';

/**
 * Zod schemas of the registry's own endpoints (/models…), shared with the CLI, OpenAPI and the web UI
 * (which infers its types from them: keep this module free of Node imports).
 */

const kv = z.object({ key: z.string(), value: z.string() });

export const gateVerdict = z.object({
  passed: z.boolean(),
  forced: z.boolean(),
  margin: z.number(),
  candidate_auc: z.number().nullable(),
  production_version: z.number().nullable(),
  production_auc: z.number().nullable(),
  delta: z.number().nullable(),
  message: z.string(),
  decided_by: z.string(),
  decided_at: z.number(),
  reason: z.string().optional(),
  servability: z
    .object({
      checked: z.boolean(),
      servable: z.boolean().nullable(),
      message: z.string(),
      target: z.string().nullable(),
      checks: z.array(z.object({ name: z.string(), passed: z.boolean(), message: z.string() })),
      reference: z.object({ n: z.number(), max_abs_diff: z.number(), tolerance: z.number() }).nullable(),
    })
    .optional()
    .describe('The canary load in the deployment service that ran before the production alias moved'),
  basis: z
    .object({ kind: z.enum(['validation', 'site']), site_data: z.string().nullable(), n: z.number().nullable() })
    .optional()
    .describe("What the AUCs were measured on: the versions' validation splits, or one site's labelled cases (a site-calibrated candidate)"),
});

const proportion = z.object({ k: z.number(), n: z.number(), value: z.number(), ci: z.tuple([z.number(), z.number()]), method: z.enum(['wilson', 'clopper-pearson']), level: z.number() });

/** A site calibration, as recorded in a calibrated version's metadata (`site_calibration`). */
export const siteCalibration = z.object({
  format: z.literal('xray-site-calibration/1'),
  parent: z.object({ name: z.string(), version: z.number(), onnx_sha256: z.string() }),
  data: z.object({
    kind: z.enum(['folder', 'dataset_version']),
    manifest_sha256: z.string().describe('The site data: a dataset version id (its manifest hash), or the sha256 of the folder manifest (distinct image hashes + labels)'),
    dataset_version: z.string().nullable(),
    split: z.string().nullable(),
    n: z.number(),
    positives: z.number(),
    negatives: z.number(),
    duplicates_dropped: z.number(),
    failed: z.number().describe('Images that could not be decoded or scored (left out of the fit)'),
  }),
  method: z.enum(['sensitivity', 'youden']),
  target_sensitivity: z.number().nullable(),
  threshold: z.number().describe('On the served (calibrated) probability scale'),
  temperature: z.number().describe("Served probability = sigmoid(logit(p) / T) of the model file's output p"),
  nll_before: z.number(),
  nll_after: z.number(),
  ece_before: z.number(),
  ece_after: z.number(),
  auc: z.number(),
  auc_ci: z.tuple([z.number(), z.number()]).nullable(),
  sensitivity: proportion,
  specificity: proportion,
  confusion: z.object({ tp: z.number(), fp: z.number(), tn: z.number(), fn: z.number() }),
  sample_size: z.object({
    half_width: z.number(),
    positives_needed: z.number(),
    negatives_needed: z.number(),
    positives: z.number(),
    negatives: z.number(),
    sufficient: z.boolean(),
    achieved_half_width: z.number(),
  }),
  min_cases: z.number(),
  gate_evidence: z.object({
    site_auc: z.number(),
    production: z.object({ version: z.number(), onnx_sha256: z.string(), site_auc: z.number().nullable() }).nullable(),
  }),
  calibrated_by: z.string(),
  calibrated_at: z.string(),
});
export type SiteCalibration = z.infer<typeof siteCalibration>;

export const calibrateOptions = z.object({
  method: z.enum(['sensitivity', 'youden']).default('sensitivity'),
  target_sensitivity: z.coerce.number().gt(0).lt(1).default(0.95),
  min_cases: z.coerce.number().int().min(10).max(100_000).default(30),
  ci_method: z.enum(['wilson', 'clopper-pearson']).default('wilson'),
  promote: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
    .default(false)
    .transform((v) => v === true || v === 'true' || v === '1'),
});

export const calibrateJsonBody = calibrateOptions.extend({
  dataset_version: z.string().regex(/^[0-9a-f]{64}$/, 'a dataset version id (sha256)'),
  split: z.enum(['train', 'val', 'test']).optional().describe('Only this split of the version (default: every image in it)'),
});



export const stage = z.enum(STAGES as readonly Stage[] as [Stage, ...Stage[]]);

export const modelVersionView = z.object({
  name: z.string(),
  version: z.number(),
  stage,
  aliases: z.array(z.string()),
  description: z.string(),
  created: z.number(),
  updated: z.number(),
  user_id: z.string(),
  source: z.string(),
  run_id: z.string().nullable(),
  status: z.string(),
  tags: z.array(kv),
  deleted: z.boolean(),
  onnx: z.object({ key: z.string(), sha256: z.string(), bytes: z.number() }).nullable(),
  input_name: z.string().nullable(),
  input_size: z.number().nullable(),
  has_features: z.boolean(),
  threshold: z.number().nullable(),
  threshold_method: z.string().nullable(),
  temperature: z.number().nullable().describe("Site temperature the deployment applies to this version's probabilities (null: none; the trainer's own temperature is inside the ONNX file)"),
  preprocessing: z.unknown(),
  preprocessing_hash: z.string().nullable(),
  dataset_version: z.string().nullable(),
  code_version: z.string().nullable(),
  parent: z.object({ name: z.string(), version: z.number() }).nullable(),
  val_auc: z.number().nullable(),
  metrics: z.record(z.string(), z.unknown()).nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable().optional(),
  gate: gateVerdict.nullable(),
  variant: z
    .object({
      kind: z.string().describe("'int8', or 'unknown' for a record that cannot be read"),
      of: z.object({ name: z.string(), version: z.number() }).nullable().describe('The version whose weights this is another form of'),
      gate_passed: z.boolean().describe('Whether its parity gate passed: a variant that did not never serves'),
      message: z.string().describe("The gate's verdict when it passed; why the version cannot serve when not"),
    })
    .nullable()
    .optional()
    .describe('Set when this version is a variant of another (an INT8 quantization), from metadata.variant'),
});
export type ModelVersionView = z.infer<typeof modelVersionView>;

export const stageEvent = z.object({
  id: z.string(),
  version: z.number(),
  from_stage: z.string(),
  to_stage: z.string(),
  outcome: z.string(),
  actor: z.string(),
  forced: z.boolean(),
  reason: z.string().nullable(),
  verdict: gateVerdict.nullable(),
  created_at: z.number(),
});


export const modelSummary = z.object({
  name: z.string(),
  description: z.string(),
  created: z.number(),
  updated: z.number(),
  aliases: z.array(z.object({ alias: z.string(), version: z.number() })),
  latest_version: z.number().nullable(),
  production: z.object({ version: z.number(), val_auc: z.number().nullable() }).nullable(),
  staging: z.object({ version: z.number(), val_auc: z.number().nullable() }).nullable(),
});

export const modelDetail = z.object({
  model: z.object({
    name: z.string(),
    description: z.string(),
    created: z.number(),
    updated: z.number(),
    user_id: z.string(),
    tags: z.array(kv),
    aliases: z.array(z.object({ alias: z.string(), version: z.number() })),
  }),
  versions: z.array(modelVersionView),
  stage_events: z.array(stageEvent),
});

export const registerJsonBody = z.object({
  name: z.string().min(1).max(128),
  run_id: z.string().min(1),
  artifact_path: z.string().min(1).default('model.onnx'),
  metadata: z.record(z.string(), z.unknown()).optional(),
  description: z.string().max(5000).optional(),
  dataset_version: z.string().max(256).optional(),
  code_version: z.string().max(256).optional(),
  parent: z.object({ name: z.string().min(1), version: z.number().int().positive() }).optional(),
  tags: z.record(z.string(), z.string()).optional(),
});

export const stageBody = z.object({
  version: z.union([z.number().int().positive(), z.string().regex(/^\d+$/).transform(Number)]),
  stage,
  force: z.boolean().default(false),
  reason: z.string().max(2000).optional(),
});

export const stageResult = z.object({
  model_version: modelVersionView,
  gate: gateVerdict.nullable(),
  changed: z.boolean(),
  demoted: z.array(z.object({ version: z.number(), stage: z.string() })),
});

const evaluationSummary = z.object({
  split: z.string(),
  n: z.number().nullable(),
  positives: z.number().nullable(),
  negatives: z.number().nullable(),
  auc: z.number().nullable(),
  auc_ci: z.tuple([z.number(), z.number()]).nullable(),
  ci_level: z.number().nullable(),
  sensitivity: z.number().nullable(),
  specificity: z.number().nullable(),
  ppv: z.number().nullable(),
  npv: z.number().nullable(),
  f1: z.number().nullable(),
  accuracy: z.number().nullable(),
  threshold: z.number().nullable(),
  confusion: z.object({ tp: z.number(), fp: z.number(), tn: z.number(), fn: z.number() }).nullable(),
});

export const comparison = z.object({
  name: z.string(),
  versions: z.array(
    z.object({
      version: z.number(),
      stage: z.string(),
      aliases: z.array(z.string()),
      created: z.number(),
      run_id: z.string().nullable(),
      dataset_version: z.string().nullable(),
      preprocessing_hash: z.string().nullable(),
      threshold: z.number().nullable(),
      threshold_method: z.string().nullable(),
      metrics: evaluationSummary.nullable(),
      test_metrics: z.array(evaluationSummary),
      confusion: evaluationSummary.shape.confusion,
      roc: z.array(z.object({ fpr: z.number(), tpr: z.number(), threshold: z.number().nullable() })),
      params: z.record(z.string(), z.string()),
    }),
  ),
  params_diff: z.record(z.string(), z.array(z.string().nullable())),
  metric_deltas: z.array(z.object({ version: z.number(), against: z.number(), deltas: z.record(z.string(), z.number().nullable()) })),
});

const lineageNode = z.object({ kind: z.string(), id: z.string(), details: z.record(z.string(), z.unknown()) });
export const lineage = z.object({
  model: z.object({ name: z.string(), version: z.number() }),
  run: z
    .object({
      run_id: z.string(),
      experiment_id: z.string(),
      run_name: z.string(),
      status: z.string(),
      start_time: z.number(),
      end_time: z.number().nullable(),
      dataset_inputs: z.array(
        z.object({
          tags: z.array(kv),
          dataset: z.object({ name: z.string(), digest: z.string(), source_type: z.string(), source: z.string(), schema: z.string().optional(), profile: z.string().optional() }),
        }),
      ),
    })
    .nullable(),
  dataset_version: z.string().nullable(),
  preprocessing: z.object({ hash: z.string().nullable(), spec: z.unknown() }),
  code_version: z.string().nullable(),
  parents: z.array(z.object({ name: z.string(), version: z.number(), onnx_sha256: z.string().nullable(), dataset_version: z.string().nullable(), deleted: z.boolean() })),
  artifacts: z.array(z.object({ path: z.string(), sha256: z.string(), size: z.number() })),
  chain: z.array(lineageNode),
});

const lungFieldShares = z.object({ inside: z.number(), above: z.number(), below: z.number(), between: z.number(), lateral: z.number() });

/** The lung-field heatmap report a version's card carries (model-card-types' LungFieldReport). */
export const lungFieldReport = z.object({
  method: z.literal('cam'),
  split: z.string(),
  dataset_version: z.string(),
  atlas: z.object({
    kind: z.string(),
    description: z.string(),
    train_images: z.number(),
    side: z.number(),
    coverage: z.number(),
    bbox: z
      .object({ top: z.number(), bottom: z.number(), left: z.number(), right: z.number() })
      .optional()
      .describe("The lung fields' bounding box in fractions of the model input (end exclusive): with a margin, a box for the training hyper-parameter input_crop."),
  }),
  n: z.number(),
  failed: z.number(),
  empty: z.number(),
  mean_inside: z.number().nullable(),
  median_inside: z.number().nullable(),
  p10_inside: z.number().nullable(),
  share_mostly_outside: z.number().nullable(),
  regions: lungFieldShares.nullable(),
  by_label: z.record(z.string(), z.object({ n: z.number(), mean_inside: z.number().nullable(), share_mostly_outside: z.number().nullable() })),
  measured_by: z.string(),
  measured_at: z.string(),
});

/** Where a version's weights were trained (model-card-types' TrainedOn). */
export const trainedOn = z.object({
  device: z.string().nullable().describe("Device kind: 'cpu' or 'cuda'"),
  device_name: z.string().nullable().describe("GPU model, or 'cpu'"),
  processes: z.number().nullable().describe('Processes of a distributed (torchrun) run; 1 for a single process'),
  threads: z.number().nullable(),
  torch: z.string().nullable().describe('PyTorch version'),
  amp: z.boolean().nullable(),
  source: z.enum(['model.json', 'card']).describe("'model.json': recorded by the trainer; 'card': written into the card metadata (card.trained_on)"),
});

/** Candidate training recipes on held-out splits built from the training data (model-card-types' ShiftEvidence). */
export const shiftEvidence = z.object({
  protocol: z.string(),
  rows: z.array(
    z.object({
      candidate: z.string(),
      split: z.string(),
      description: z.string(),
      n: z.number().nullable(),
      positives: z.number().nullable(),
      negatives: z.number().nullable(),
      auc: z.number().nullable(),
      auc_ci: z.tuple([z.number(), z.number()]).nullable(),
      sensitivity: z.number().nullable().describe("At the candidate's own validation threshold"),
      specificity: z.number().nullable().describe("At the candidate's own validation threshold"),
      threshold: z.number().nullable(),
      shipped: z.boolean().describe('The candidate this version was trained with'),
    }),
  ),
});

export const modelCard = z.object({
  model: z.record(z.string(), z.unknown()),
  intended_use: z.object({ summary: z.string(), users: z.string(), out_of_scope: z.array(z.string()) }),
  data: z.record(z.string(), z.unknown()),
  evaluation: z.array(evaluationSummary),
  threshold: z.object({ value: z.number().nullable(), method: z.string().nullable(), how_chosen: z.string() }),
  training: z.object({
    run_id: z.string().nullable(),
    code_version: z.string().nullable(),
    parent: z.object({ name: z.string(), version: z.number() }).nullable(),
    hyperparameters: z.record(z.string(), z.unknown()).nullable(),
    seed: z.unknown(),
    best_epoch: z.unknown(),
    trained_on: trainedOn.nullable().describe("The trainer's model.json trained_on, else the card metadata's; null: not recorded"),
  }),
  shift_evidence: shiftEvidence.nullable().describe('From the card metadata (card.shift_evidence); null: not recorded'),
  tried: z
    .array(z.object({ what: z.string(), result: z.string(), kept: z.boolean() }))
    .nullable()
    .describe('What was tried on the way to this version (card.tried); null: not recorded'),
  heatmap_location: lungFieldReport.nullable(),
  site_calibrations: z.array(
    z.object({
      version: z.number(),
      parent: z.object({ name: z.string(), version: z.number() }),
      this_version: z.boolean(),
      stage: z.string(),
      data_kind: z.string(),
      data_hash: z.string(),
      split: z.string().nullable(),
      n: z.number(),
      positives: z.number(),
      negatives: z.number(),
      method: z.string(),
      target_sensitivity: z.number().nullable(),
      threshold: z.number(),
      temperature: z.number(),
      auc: z.number(),
      sensitivity: z.object({ value: z.number(), ci: z.tuple([z.number(), z.number()]), k: z.number(), n: z.number() }),
      specificity: z.object({ value: z.number(), ci: z.tuple([z.number(), z.number()]), k: z.number(), n: z.number() }),
      ci_method: z.string(),
      sufficient: z.boolean(),
      positives_needed: z.number(),
      negatives_needed: z.number(),
      by: z.string(),
      at: z.string(),
    }),
  ),
  limitations: z.array(z.string()),
  generated_at: z.string(),
});

export const deleteResult = z.object({ name: z.string(), version: z.number(), hard: z.boolean(), removed_objects: z.array(z.string()) });
export const gcResult = z.object({
  scanned: z.number(),
  referenced: z.number(),
  kept_recent: z.number().describe('Unreferenced but younger than min_age_s: kept'),
  removed: z.array(z.string()),
  dry_run: z.boolean(),
  min_age_s: z.number(),
});
export const gcBody = z
  .object({
    dry_run: z.boolean().default(false),
    min_age_s: z.number().int().min(0).max(365 * 86400).optional().describe('Keep objects written or reused within this many seconds (default 3600): a registration may be about to reference them'),
  })
  .optional();

export const calibrateResult = z.object({
  model_version: modelVersionView,
  calibration: siteCalibration,
  failures: z.array(z.object({ file: z.string(), code: z.string(), message: z.string() })),
  promotion: z.object({
    requested: z.boolean(),
    promoted: z.boolean(),
    gate: gateVerdict.nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
  }),
});
