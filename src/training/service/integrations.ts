import { AppError } from '../../core/errors.js';
import type { Platform } from '../../core/platform.js';
import type { ModelRegistrar, RegisterModelInput, RegisteredModel } from './registration.js';
import { NoRunTracker, RegistryRunTracker, type RunTracker } from './tracking.js';

/**
 * Experiment tracking through the model registry's tracking store (same database and object
 * store). Falls back to no tracking (jobs keep their own records) when the registry's tables are
 * not there, so training never depends on the registry being deployed.
 */
export async function createRunTracker(platform: Platform): Promise<RunTracker> {
  try {
    const { SqlTrackingStore } = await import('../../model-registry/store/sql-tracking-store.js');
    const store = new SqlTrackingStore(platform.database, platform.objects);
    await store.searchExperiments({ pageSize: 1 });
    return new RegistryRunTracker(store);
  } catch (err) {
    platform.logger.warn({ err }, 'experiment tracking unavailable; training runs are recorded in training jobs only');
    return new NoRunTracker();
  }
}

/**
 * Model registration through the model registry service, in-process on the same platform. The
 * ONNX file is taken from the job's tracked run (so the version links to its run) or, when the
 * run does not hold it, uploaded from the object store.
 */
export async function createRegistrar(platform: Platform): Promise<ModelRegistrar> {
  let loading: Promise<import('../../model-registry/service/registry-service.js').ModelRegistryService> | null = null;
  const registry = () => {
    loading ??= import('../../model-registry/service/registry-service.js').then((m) => new m.ModelRegistryService(platform));
    loading.catch(() => (loading = null));
    return loading;
  };
  return {
    async register(input: RegisterModelInput): Promise<RegisteredModel> {
      const service = await registry();
      const common = {
        name: input.name,
        actor: { name: input.actor, role: input.role },
        requestId: input.requestId,
        metadata: input.metadata,
        description: `Trained by training job ${input.jobId}`,
        tags: [{ key: 'xray.training_job', value: input.jobId }],
        datasetVersion: input.datasetVersion ?? undefined,
        extraArtifacts: input.extraArtifacts,
      };
      let version;
      if (input.runId && input.runArtifactPath) {
        try {
          version = await service.register({ ...common, source: { kind: 'run', runId: input.runId, artifactPath: input.runArtifactPath } });
        } catch (err) {
          if (!(err instanceof AppError && err.code === 'NOT_FOUND')) throw err;
        }
      }
      version ??= await service.register({ ...common, source: { kind: 'upload', data: await input.onnxBytes(), filename: 'model.onnx' } });
      return { name: version.name, version: version.version, stage: version.current_stage, run_id: version.run_id, onnx_sha256: version.onnx?.sha256 ?? null };
    },
  };
}
