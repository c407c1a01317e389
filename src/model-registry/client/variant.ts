/**
 * Model variants: a version registered as another form of a parent version's weights (today an
 * INT8 quantization of an FP32 model), recorded in the version's metadata under `variant`. The
 * training service writes it, the registry refuses to promote and the deployment refuses to serve
 * a variant whose parity gate did not pass — so the three read it through this one contract.
 */
import { z } from 'zod';

/** The INT8 parity gate's limits against the FP32 model on the validation split. */
export const INT8_GATE_LIMITS = Object.freeze({ max_auc_drop: 0.002, max_probability_mae: 0.01 });

export const int8GateSchema = z.object({
  method: z.literal('onnxruntime-node'),
  split: z.literal('val'),
  n: z.number().int(),
  auc_fp32: z.number().nullable(),
  auc_int8: z.number().nullable(),
  auc_drop: z.number().nullable(),
  probability_mae: z.number(),
  probability_max_abs_diff: z.number(),
  limits: z.object({ max_auc_drop: z.number(), max_probability_mae: z.number() }),
  passed: z.boolean(),
  message: z.string(),
  /** Bare ONNX Runtime throughput of each file on the same inputs, same threads (informational). */
  speed: z
    .object({ threads: z.number().int(), batch: z.number().int(), fp32_images_per_s: z.number(), int8_images_per_s: z.number(), speedup: z.number() })
    .nullable()
    .optional(),
});
export type Int8Gate = z.infer<typeof int8GateSchema>;

export const variantSchema = z.object({
  kind: z.literal('int8'),
  of: z.object({ name: z.string(), version: z.number().int() }),
  gate: int8GateSchema,
});
export type ModelVariant = z.infer<typeof variantSchema>;

/**
 * Whether a metadata `variant` value claims to be a variant record (an object, well-formed or not).
 * Only the training service writes those; the trainer's bare `"int8"` marker in an ONNX file is not one.
 */
export function isVariantRecord(value: unknown): boolean {
  return typeof value === 'object' && value !== null;
}

/** The version's variant record, or null for an ordinary version. A malformed record is reported as such. */
export function variantOf(metadata: unknown): ModelVariant | { malformed: true } | null {
  const raw = metadata && typeof metadata === 'object' ? (metadata as Record<string, unknown>).variant : undefined;
  if (raw === undefined || raw === null) return null;
  const parsed = variantSchema.safeParse(raw);
  return parsed.success ? parsed.data : { malformed: true };
}

/**
 * Whether a version may serve as far as its variant record goes: ordinary versions may; a variant
 * only when its parity gate passed. `message` says why not.
 */
export function variantServability(metadata: unknown): { servable: true } | { servable: false; message: string } {
  const variant = variantOf(metadata);
  if (variant === null) return { servable: true };
  if ('malformed' in variant) {
    // The trainer's INT8 file says `variant: "int8"` in its ONNX metadata; registered on its own it has no verdict.
    const bare = (metadata as Record<string, unknown>).variant === 'int8';
    return {
      servable: false,
      message: bare
        ? 'it is an INT8 file registered without its parity gate (train with --int8 and register the job to have the gate measured)'
        : 'its variant record (metadata.variant) is malformed, so its parity gate cannot be read',
    };
  }
  if (!variant.gate.passed) return { servable: false, message: `it is the INT8 variant of version ${variant.of.version} and failed its parity gate: ${variant.gate.message}` };
  return { servable: true };
}
