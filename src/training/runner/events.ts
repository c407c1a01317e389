import { z } from 'zod';

/**
 * The worker's JSON-lines events (trainer/README.md). Each known event is checked for the fields
 * the service relies on; extra fields pass through. A line that is JSON but does not match is
 * reported as `other` so one odd event never stops a job.
 */
const num = z.number();
const optNum = z.number().nullable().optional();
const trial = z.number().int().optional();

export const evaluationMetricsSchema = z.looseObject({
  n: z.number().int(),
  positives: z.number().int().optional(),
  auc: z.number().nullable(),
  auc_ci: z.array(z.number()).nullable().optional(),
  accuracy: optNum,
  sensitivity: optNum,
  specificity: optNum,
  ppv: optNum,
  npv: optNum,
  f1: optNum,
  threshold: optNum,
  threshold_method: z.string().optional(),
  confusion: z.looseObject({ tp: num, fp: num, tn: num, fn: num }).optional(),
  roc: z.array(z.looseObject({ fpr: num, tpr: num, threshold: z.number().nullable().optional() })).optional(),
  calibration: z
    .looseObject({
      ece: z.number().nullable(),
      bins: z.array(
        z.looseObject({ lo: num, hi: num, count: num, mean_pred: z.number().nullable(), frac_pos: z.number().nullable() }),
      ),
    })
    .optional(),
  temperature: optNum,
});
export type EvaluationMetrics = z.infer<typeof evaluationMetricsSchema>;

export const parityRecordSchema = z.looseObject({
  method: z.string(),
  n: z.number().int(),
  max_abs_diff: z.number().nullable(),
  ok: z.boolean().nullable(),
  samples: z.string().optional(),
  tolerance: z.number().optional(),
});
export type ParityRecord = z.infer<typeof parityRecordSchema>;

const schemas = {
  started: z.looseObject({
    event: z.literal('started'),
    trial,
    job_id: z.string(),
    device: z.string().optional(),
    threads: z.number().optional(),
    model: z.string().optional(),
    parameters: z.number().optional(),
    train_images: z.number().optional(),
    val_images: z.number().optional(),
    start_epoch: z.number().int(),
    input_size: z.number().int().optional(),
    epochs: z.number().int(),
    steps_per_epoch: z.number().int().optional(),
    resumed_from: z.string().nullable().optional(),
  }),
  progress: z.looseObject({
    event: z.literal('progress'),
    trial,
    epoch: z.number().int(),
    step: z.number().int(),
    steps: z.number().int(),
    loss: optNum,
    images_per_sec: optNum,
    /** [global step, that step's mean loss] since the previous progress event (thinned to at most 20). */
    step_losses: z.array(z.tuple([z.number().int().nonnegative(), z.number()])).max(100).optional(),
  }),
  epoch: z.looseObject({
    event: z.literal('epoch'),
    trial,
    epoch: z.number().int(),
    epochs: z.number().int(),
    train_loss: optNum,
    val_loss: optNum,
    val_auc: z.number().nullable(),
    lr: optNum,
    images_per_sec: optNum,
    seconds: optNum,
    best_val_auc: optNum,
    early_stopped: z.boolean().optional(),
  }),
  checkpoint: z.looseObject({ event: z.literal('checkpoint'), trial, epoch: z.number().int(), path: z.string() }),
  evaluation: z.looseObject({ event: z.literal('evaluation'), trial, split: z.string(), metrics: evaluationMetricsSchema }),
  artifact: z.looseObject({
    event: z.literal('artifact'),
    trial,
    kind: z.string(),
    path: z.string(),
    sha256: z.string().optional(),
    bytes: z.number().optional(),
  }),
  finished: z.looseObject({
    event: z.literal('finished'),
    best_epoch: z.number().int().nullable().optional(),
    best_val_auc: z.number().nullable().optional(),
    threshold: z.number().nullable().optional(),
    temperature: z.number().nullable().optional(),
    metrics: evaluationMetricsSchema.nullable().optional(),
    test_metrics: z.record(z.string(), evaluationMetricsSchema).optional(),
    artifacts: z.record(z.string(), z.string()).default({}),
    parity: parityRecordSchema.nullable().optional(),
  }),
  failed: z.looseObject({
    event: z.literal('failed'),
    trial,
    reason: z.string(),
    error_type: z.string().optional(),
    exit_code: z.number().nullable().optional(),
    signal: z.string().nullable().optional(),
    stderr_tail: z.string().optional(),
  }),
  cancelled: z.looseObject({
    event: z.literal('cancelled'),
    trial,
    epoch: z.number().int().optional(),
    step: z.number().int().optional(),
    checkpoint: z.string().nullable().optional(),
  }),
  trial_started: z.looseObject({
    event: z.literal('trial_started'),
    trial: z.number().int(),
    params: z.record(z.string(), z.unknown()),
    output_dir: z.string().optional(),
  }),
  trial_pruned: z.looseObject({ event: z.literal('trial_pruned'), trial: z.number().int(), epoch: z.number().int(), value: optNum }),
  trial_finished: z.looseObject({
    event: z.literal('trial_finished'),
    trial: z.number().int(),
    value: z.number().nullable(),
    params: z.record(z.string(), z.unknown()).optional(),
    best_epoch: z.number().int().nullable().optional(),
    metrics: evaluationMetricsSchema.nullable().optional(),
    artifacts: z.record(z.string(), z.string()).optional(),
  }),
  trial_failed: z.looseObject({ event: z.literal('trial_failed'), trial: z.number().int(), reason: z.string(), error_type: z.string().optional() }),
  study_finished: z.looseObject({
    event: z.literal('study_finished'),
    best_trial: z.number().int().nullable(),
    best_value: z.number().nullable(),
    best_params: z.record(z.string(), z.unknown()).nullable(),
    trials: z.array(z.looseObject({ trial: z.number().int(), state: z.string(), value: z.number().nullable().optional() })),
    cancelled: z.boolean(),
    direction: z.string().optional(),
  }),
} as const;

type Schemas = typeof schemas;
export type KnownEventName = keyof Schemas;
export type TrainerEventOf<K extends KnownEventName> = z.infer<Schemas[K]>;
/** A JSON event the service does not know (or one that failed its check): kept, logged, otherwise ignored. */
export interface OtherEvent {
  event: 'other';
  name: string;
  data: Record<string, unknown>;
  problem?: string;
}
export type TrainerEvent = { [K in KnownEventName]: TrainerEventOf<K> }[KnownEventName] | OtherEvent;

export type StartedEvent = TrainerEventOf<'started'>;
export type EpochEvent = TrainerEventOf<'epoch'>;
export type FinishedEvent = TrainerEventOf<'finished'>;
export type FailedEvent = TrainerEventOf<'failed'>;
export type StudyFinishedEvent = TrainerEventOf<'study_finished'>;

export const KNOWN_EVENTS = Object.keys(schemas) as KnownEventName[];

/**
 * Parses one stdout line. Returns null when the line is not a JSON object with a string `event`
 * (such lines belong in the log, not the event stream).
 */
export function parseEventLine(line: string): TrainerEvent | null {
  const text = line.trim();
  if (!text.startsWith('{')) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const obj = raw as Record<string, unknown>;
  if (typeof obj.event !== 'string') return null;
  const schema = (schemas as Record<string, z.ZodType>)[obj.event];
  if (!schema) return { event: 'other', name: obj.event, data: obj };
  const parsed = schema.safeParse(obj);
  if (!parsed.success) {
    const problem = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    return { event: 'other', name: obj.event, data: obj, problem };
  }
  return parsed.data as TrainerEvent;
}
