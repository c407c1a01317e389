import { AppError } from '../../core/errors.js';
import type { JobRecord } from '../store/types.js';
import { SERVICE_NAME, type TrainingContext } from './context.js';
import { ensembleLineage } from './ensemble.js';
import type { RegisterModelInput, RegisteredModel } from './registration.js';

async function readModelMeta(ctx: TrainingContext, job: JobRecord): Promise<Record<string, unknown>> {
  const ref = job.artifacts.model_meta;
  if (!ref) return {};
  return JSON.parse((await ctx.platform.objects.get(ref.key)).toString('utf8')) as Record<string, unknown>;
}

/**
 * Registers a succeeded job's ONNX model in the model registry with its model.json metadata
 * (threshold, metrics, input size, preprocessing), the parity the service measured and the
 * lineage (job, run, dataset version, artifacts). Records the result on the job.
 * @throws AppError CONFLICT when the job has not succeeded or has no ONNX artifact.
 */
export async function registerJobModel(
  ctx: TrainingContext,
  job: JobRecord,
  name: string,
  caller: { actor: string; role: RegisterModelInput['role']; requestId?: string },
): Promise<RegisteredModel> {
  const { actor, requestId } = caller;
  if (job.state !== 'succeeded') throw new AppError('CONFLICT', `training job '${job.id}' is ${job.state}; only a succeeded job can be registered`);
  const onnx = job.artifacts.onnx;
  if (!onnx) throw new AppError('CONFLICT', `training job '${job.id}' has no ONNX export (it ran with export.onnx=false)`);
  const meta = await readModelMeta(ctx, job);
  const registrar = await ctx.registrar();
  const artifactKeys = Object.fromEntries(Object.entries(job.artifacts).map(([k, v]) => [k, v.key]));
  const metadata: Record<string, unknown> = {
    ...meta,
    threshold: job.threshold ?? meta.threshold,
    metrics: job.metrics ?? meta.metrics,
    test_metrics: job.testMetrics ?? meta.test_metrics,
    input_size: job.inputSize ?? meta.input_size,
    parity: job.parity ?? meta.parity,
    dataset_version: job.datasetVersion ?? meta.dataset_version,
    lineage: {
      training_job: job.id,
      run_id: job.runId,
      experiment: job.experiment,
      dataset_version: job.datasetVersion ?? meta.dataset_version ?? null,
      preprocessing_hash: meta.preprocessing_hash ?? null,
      artifacts: artifactKeys,
      // An ensemble's members (job and tracking-run ids): where the combined model came from.
      ...(job.request.ensemble_of?.length ? { ensemble_of: await ensembleLineage(ctx.store, job.request.ensemble_of) } : {}),
    },
  };
  let registered: RegisteredModel;
  try {
    const objects = ctx.platform.objects;
    const extraArtifacts: RegisterModelInput['extraArtifacts'] = [];
    for (const [kind, path, contentType] of [
      ['evaluation', 'evaluation.json', 'application/json'],
      ['roc_png', 'plots/roc.png', 'image/png'],
      ['calibration_png', 'plots/calibration.png', 'image/png'],
      ['canary', 'canary.json', 'application/json'],
    ] as const) {
      const ref = job.artifacts[kind];
      if (ref) extraArtifacts.push({ path, data: await objects.get(ref.key), contentType });
    }
    registered = await registrar.register({
      name,
      jobId: job.id,
      runId: job.runId,
      runArtifactPath: job.runId ? 'model/model.onnx' : undefined,
      onnx,
      onnxBytes: () => objects.get(onnx.key),
      metadata,
      actor,
      role: caller.role,
      requestId,
      extraArtifacts,
      datasetVersion: job.datasetVersion ?? (typeof meta.dataset_version === 'string' ? meta.dataset_version : null),
    });
  } catch (err) {
    ctx.platform.audit.record({
      actor,
      action: 'training.register',
      resource: `training-job:${job.id}`,
      outcome: 'failure',
      requestId: requestId ?? null,
      service: SERVICE_NAME,
      details: { name, error: err instanceof Error ? err.message : String(err) },
    });
    throw err;
  }
  await ctx.store.updateJob(job.id, { registered: { ...registered, name: registered.name, version: registered.version } });
  await ctx.tracker.setTags(job.runId, { 'xray.registered_model': `${registered.name}/${registered.version}` });
  ctx.platform.audit.record({
    actor,
    action: 'training.register',
    resource: `training-job:${job.id}`,
    requestId: requestId ?? null,
    service: SERVICE_NAME,
    details: { name: registered.name, version: registered.version, onnx_sha256: onnx.sha256 },
  });
  ctx.live.notify(job.id);
  return registered;
}
