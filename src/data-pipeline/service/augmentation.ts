import { z } from 'zod';
import { AppError } from '../../core/errors.js';

const range = (min: number, max: number) =>
  z
    .tuple([z.number().min(min).max(max), z.number().min(min).max(max)])
    .refine(([lo, hi]) => lo <= hi, { message: 'range must be [low, high] with low <= high' });

/**
 * On-the-fly augmentation applied by the training engine; it travels with every dataset version and
 * training job. Defaults are medical-appropriate: small geometric changes, mild intensity changes,
 * no vertical flip (never offered) and horizontal flip off (the heart is on the left).
 * - `rotation_deg`: uniform rotation in ±degrees.
 * - `translate`: maximum shift as a fraction of the side, each axis.
 * - `scale`: zoom range.
 * - `brightness`, `contrast`: maximum relative change (0.1 = ±10 %).
 * - `gamma`: gamma range.
 * - `hflip`: horizontal flip with probability 0.5 when true.
 * - `blur`: maximum Gaussian blur sigma in pixels (0 = off).
 * - `noise`: standard deviation of additive Gaussian noise on [0, 1] pixels (0 = off).
 */
export const AugmentationSpec = z
  .object({
    rotation_deg: z.number().min(0).max(30).default(10),
    translate: z.number().min(0).max(0.25).default(0.05),
    scale: range(0.5, 2).default([0.9, 1.1]),
    brightness: z.number().min(0).max(0.5).default(0.1),
    contrast: z.number().min(0).max(0.5).default(0.1),
    gamma: range(0.5, 2).default([0.9, 1.1]),
    hflip: z.boolean().default(false),
    blur: z.number().min(0).max(3).default(0),
    noise: z.number().min(0).max(0.2).default(0),
  })
  .strict();

export type AugmentationSpec = z.output<typeof AugmentationSpec>;
export type AugmentationSpecInput = z.input<typeof AugmentationSpec>;

export const DEFAULT_AUGMENTATION: AugmentationSpec = Object.freeze(AugmentationSpec.parse({}));

/**
 * Completes an augmentation spec with the defaults.
 * @throws AppError INVALID_INPUT naming the bad fields.
 */
export function parseAugmentationSpec(input: unknown = {}): AugmentationSpec {
  const parsed = AugmentationSpec.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'augmentation'}: ${i.message}`).join('; ');
    throw new AppError('INVALID_INPUT', `invalid augmentation spec: ${issues}`, parsed.error.issues);
  }
  return parsed.data;
}
