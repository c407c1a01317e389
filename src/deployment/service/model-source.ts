import type { PreprocessSpecInput } from '../../core/imaging/index.js';

/** A model version found in a registry, ready to fetch. */
export interface ResolvedModelVersion {
  name: string;
  version: string;
  /** The alias it was resolved through, if any. */
  alias: string | null;
  /** The preprocessing the model was trained with, when recorded. */
  preprocessing: PreprocessSpecInput | null;
  /** The decision threshold recorded with the version (the file's metadata is the fallback). */
  threshold: number | null;
  /**
   * The site temperature recorded with a calibrated version (served probability =
   * sigmoid(logit(p) / T)); null when the version carries none (the file's output is served as is).
   */
  temperature?: number | null;
  /** Where the ONNX file lives, for display. */
  uri: string;
  /** Reads the ONNX file's bytes. */
  fetch(): Promise<Uint8Array>;
  /** Reads another file registered with the version (`canary.json`); null when it has none. */
  fetchArtifact?(path: string): Promise<Uint8Array | null>;
}

/**
 * Where the deployment service finds models by name: the model registry in production, nothing in
 * a bare development setup (then only local ONNX files load).
 */
export interface ModelSource {
  /**
   * Resolves a version number or an alias ('production', 'staging', …).
   * @throws AppError MODEL_NOT_FOUND / NOT_FOUND when the model, version or alias does not exist;
   *   UNPROCESSABLE when the version has no ONNX artifact.
   */
  resolve(name: string, versionOrAlias: string): Promise<ResolvedModelVersion>;
}
