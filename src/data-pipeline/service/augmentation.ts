import { AppError } from '../../core/errors.js';
import { augmentationSpecSchema, DEFAULT_AUGMENTATION, type AugmentationOverrides, type AugmentationSpec } from '../../core/ml/augmentation.js';

/**
 * On-the-fly augmentation applied by the training engine; it travels with every dataset version and
 * training job. The fields, limits and defaults are the platform's one contract (core/ml/augmentation.ts),
 * shared with the training API and the PyTorch worker.
 */
export { DEFAULT_AUGMENTATION, type AugmentationSpec };
export type AugmentationSpecInput = AugmentationOverrides;

/**
 * Completes an augmentation spec with the defaults.
 * @throws AppError INVALID_INPUT naming the bad fields.
 */
export function parseAugmentationSpec(input: unknown = {}): AugmentationSpec {
  const parsed = augmentationSpecSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'augmentation'}: ${i.message}`).join('; ');
    throw new AppError('INVALID_INPUT', `invalid augmentation spec: ${issues}`, parsed.error.issues);
  }
  return parsed.data;
}
