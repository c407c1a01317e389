import { AppError } from '../../core/errors.js';
import { delegateTo } from '../../core/local-services.js';
import type { Platform } from '../../core/platform.js';
import { modelRegistryClient, type ModelVersionView, type RunTracker } from '../../model-registry/client/index.js';
import type { ModelRegistrar, RegisterModelInput, RegisteredModel } from './registration.js';

/**
 * Experiment tracking on the model registry's tracking server, through its client (in-process in
 * embedded mode, MLflow's REST API otherwise). A tracking outage never fails a job (SafeTracker).
 */
export function createRunTracker(platform: Platform): RunTracker {
  const registry = modelRegistryClient(platform);
  return delegateTo(() => registry.tracking);
}

/**
 * Model registration through the model registry's client. The ONNX file is taken from the job's
 * tracked run (so the version links to its run) or, when the run does not hold it, uploaded.
 */
export function createRegistrar(platform: Platform): ModelRegistrar {
  const registry = modelRegistryClient(platform);
  return {
    async register(input: RegisterModelInput): Promise<RegisteredModel> {
      const ctx = { actor: { name: input.actor, role: input.role }, requestId: input.requestId };
      const common = {
        name: input.name,
        metadata: input.metadata,
        description: `Trained by training job ${input.jobId}`,
        tags: [{ key: 'xray.training_job', value: input.jobId }],
        ...(input.datasetVersion ? { datasetVersion: input.datasetVersion } : {}),
        ...(input.extraArtifacts ? { extraArtifacts: input.extraArtifacts } : {}),
      };
      let version: ModelVersionView | undefined;
      if (input.runId && input.runArtifactPath) {
        try {
          version = await registry.register({ ...common, source: { kind: 'run', runId: input.runId, artifactPath: input.runArtifactPath } }, ctx);
        } catch (err) {
          if (!(err instanceof AppError && err.code === 'NOT_FOUND')) throw err;
        }
      }
      version ??= await registry.register({ ...common, source: { kind: 'upload', data: await input.onnxBytes(), filename: 'model.onnx' } }, ctx);
      return { name: version.name, version: version.version, stage: version.stage, run_id: version.run_id, onnx_sha256: version.onnx?.sha256 ?? null };
    },
  };
}
