import { z } from 'zod';

/**
 * The augmentation spec — one source for the data pipeline (recorded with each dataset version),
 * the training API (per-job overrides) and the PyTorch worker (trainer/augmentation.json, generated
 * from this table by `npm run contracts`; a test keeps the file in step). Limits are medical-
 * appropriate: small geometric changes, mild intensity changes, no vertical flip (never offered),
 * horizontal flip off by default (the heart is on the left).
 */
export const AUGMENTATION_FIELDS = {
  enabled: { kind: 'boolean', default: true, doc: 'Augment at all (false: train on the exported pixels as they are).' },
  rotation_deg: { kind: 'number', min: 0, max: 30, default: 10, doc: 'Uniform rotation in ±degrees.' },
  translate: { kind: 'number', min: 0, max: 0.25, default: 0.05, doc: 'Maximum shift as a fraction of the side, each axis.' },
  scale: { kind: 'range', min: 0.5, max: 2, default: [0.9, 1.1], doc: 'Zoom range [low, high].' },
  aspect: { kind: 'number', min: 0, max: 0.25, default: 0, doc: 'Maximum relative change of the aspect ratio (0.1: width/height × 1/1.1..1.1).' },
  brightness: { kind: 'number', min: 0, max: 0.5, default: 0.1, doc: 'Maximum relative brightness change (0.1 = ±10 %).' },
  contrast: { kind: 'number', min: 0, max: 0.5, default: 0.1, doc: 'Maximum relative contrast change.' },
  gamma: { kind: 'range', min: 0.5, max: 2, default: [0.9, 1.1], doc: 'Gamma range [low, high].' },
  hflip: { kind: 'boolean', default: false, doc: 'Horizontal flip with probability 0.5.' },
  blur: { kind: 'number', min: 0, max: 3, default: 0, doc: 'Maximum Gaussian blur sigma in pixels (0 = off).' },
  noise: { kind: 'number', min: 0, max: 0.2, default: 0, doc: 'Standard deviation of additive Gaussian noise on [0, 1] pixels (0 = off).' },
} as const satisfies Record<string, AugmentationField>;

type AugmentationField =
  | { kind: 'boolean'; default: boolean; doc: string }
  | { kind: 'number'; min: number; max: number; default: number; doc: string }
  | { kind: 'range'; min: number; max: number; default: readonly [number, number]; doc: string };

type Fields = typeof AUGMENTATION_FIELDS;
type Name = keyof Fields;

function fieldSchema(f: AugmentationField) {
  if (f.kind === 'boolean') return z.boolean().describe(f.doc);
  const n = z.number().min(f.min).max(f.max);
  if (f.kind === 'number') return n.describe(f.doc);
  return z
    .tuple([n, n])
    .refine(([lo, hi]) => lo <= hi, { message: 'range must be [low, high] with low <= high' })
    .describe(f.doc);
}

const shape = Object.fromEntries((Object.entries(AUGMENTATION_FIELDS) as [Name, AugmentationField][]).map(([k, f]) => [k, fieldSchema(f)])) as unknown as {
  [K in Name]: Fields[K]['kind'] extends 'boolean' ? z.ZodBoolean : Fields[K]['kind'] extends 'number' ? z.ZodNumber : z.ZodType<[number, number]>;
};

/** Per-job overrides: any subset of the fields, unknown ones refused. */
export const augmentationOverridesSchema = z.strictObject(shape).partial();

export type AugmentationSpec = { [K in Name]: z.output<(typeof shape)[K]> };
export type AugmentationOverrides = z.output<typeof augmentationOverridesSchema>;

/** Every field at its default. */
export const DEFAULT_AUGMENTATION: AugmentationSpec = Object.freeze(
  Object.fromEntries(Object.entries(AUGMENTATION_FIELDS).map(([k, f]) => [k, Array.isArray(f.default) ? [...f.default] : f.default])) as AugmentationSpec,
);

/** A complete spec: the overrides over the defaults, validated. */
export const augmentationSpecSchema = augmentationOverridesSchema.transform((given): AugmentationSpec => ({ ...DEFAULT_AUGMENTATION, ...given }) as AugmentationSpec);

/** The contract the Python worker reads (trainer/augmentation.json): kinds, limits and defaults. */
export function augmentationContract(): { fields: Record<string, { kind: string; min?: number; max?: number; default: unknown }> } {
  return {
    fields: Object.fromEntries(
      Object.entries(AUGMENTATION_FIELDS).map(([k, f]: [string, AugmentationField]) => [k, f.kind === 'boolean' ? { kind: f.kind, default: f.default } : { kind: f.kind, min: f.min, max: f.max, default: f.default }]),
    ),
  };
}
