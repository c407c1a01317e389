/** The preprocessing spec (zod + errors only: the data pipeline's route schemas, which the web UI reads, use it). */
import { z } from 'zod';
import { AppError } from '../errors.js';

/**
 * How an image becomes `size × size`:
 * - `letterbox`: fit inside, keep aspect ratio, pad the rest with grey level `pad`, centred.
 * - `crop`: fill the square, keep aspect ratio, cut the overflow evenly (centre crop).
 * - `squash`: stretch to the square, ignoring aspect ratio.
 */
export const PreprocessSpec = z.object({
  size: z.number().int().min(16).max(2048).default(224),
  mode: z.enum(['letterbox', 'crop', 'squash']).default('letterbox'),
  pad: z.number().int().min(0).max(255).default(0),
  format: z.literal('png').default('png'),
});

/** A complete preprocessing spec (defaults applied). */
export type PreprocessSpec = z.output<typeof PreprocessSpec>;
/** What callers may pass: every field optional. */
export type PreprocessSpecInput = z.input<typeof PreprocessSpec>;

/** Bumped whenever the pixels `preprocess` produces for a given spec change. Part of the hash. */
export const PREPROCESS_VERSION = 1;

/**
 * Parses and completes a spec.
 * @throws AppError INVALID_INPUT with zod's issues as details.
 */
export function parsePreprocessSpec(input: unknown = {}): PreprocessSpec {
  const parsed = PreprocessSpec.safeParse(input ?? {});
  if (!parsed.success) {
    throw new AppError('INVALID_INPUT', `Invalid preprocessing spec: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'spec'}: ${i.message}`).join('; ')}`, parsed.error.issues);
  }
  return parsed.data;
}
