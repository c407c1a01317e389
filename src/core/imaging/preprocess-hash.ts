import { canonicalHash } from '../canonical-json.js';
import { PREPROCESS_VERSION, parsePreprocessSpec, type PreprocessSpecInput } from './preprocess-spec.js';

/**
 * Identifies a preprocessing: sha256 (hex) of the canonical JSON (sorted keys, defaults filled in)
 * of the spec plus {@link PREPROCESS_VERSION}. Datasets and models record it; serving refuses a
 * model whose hash differs from its own preprocessing.
 */
export function preprocessingHash(spec: PreprocessSpecInput = {}): string {
  const full = parsePreprocessSpec(spec);
  return canonicalHash({ ...full, version: PREPROCESS_VERSION });
}
