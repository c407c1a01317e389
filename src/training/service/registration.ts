import type { Role } from '../../core/auth/index.js';
import { AppError } from '../../core/errors.js';

/** What training hands the model registry for one finished job. */
export interface RegisterModelInput {
  /** Registered model name, e.g. 'pneumonia'. */
  name: string;
  jobId: string;
  runId: string | null;
  /** Object store key and digest of the ONNX file. */
  onnx: { key: string; sha256: string; bytes: number };
  /** model.json of the worker plus what the service measured (parity, lineage). */
  metadata: Record<string, unknown>;
  actor: string;
  /** The caller's role (the registry lets only some roles force things). */
  role: Role;
  requestId?: string;
  /** The run's artifact path of the ONNX file, when it was logged to tracking. */
  runArtifactPath?: string;
  /** Loads the ONNX bytes (used when the run does not hold the file). */
  onnxBytes: () => Promise<Buffer>;
  /** More files to keep with the version (evaluation.json, plots). */
  extraArtifacts: { path: string; data: Buffer; contentType?: string }[];
  datasetVersion: string | null;
}

export interface RegisteredModel {
  name: string;
  version: number | string;
  [key: string]: unknown;
}

/** The model registry's registration, as training calls it (in-process, same platform). */
export interface ModelRegistrar {
  register(input: RegisterModelInput): Promise<RegisteredModel>;
}

/** Stand-in until the model registry service is available in this build. */
export const unavailableRegistrar: ModelRegistrar = {
  async register() {
    throw new AppError('SERVICE_UNAVAILABLE', 'the model registry service is not available in this build');
  },
};
