import { AppError } from '../../core/errors.js';
import type { JobRecord } from '../store/types.js';
import { SERVICE_NAME, type TrainingContext } from './context.js';
import { ensembleLineage } from './ensemble.js';
import type { RegisterModelInput, RegisteredModel } from './registration.js';
import { int8GateSchema } from '../../model-registry/client/index.js';

async function readModelMeta(ctx: TrainingContext, job: JobRecord): Promise<Record<string, unknown>> {
  const ref = job.artifacts.model_meta;
  if (!ref) return {};
  return JSON.parse((await ctx.platform.objects.get(ref.key)).toString('utf8')) as Record<string, unknown>;
}

/**
 * Registers a succeeded job's ONNX model in the model registry with its model.json metadata
 * (threshold, metrics, input size, preprocessing), the parity the service measured and the
 * lineage (job, run, dataset version, artifacts). Records the result on the job. A job with a
 * measured INT8 variant also registers that, as the next version (`int8_variant` in the result).
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
  // The FP32 version stands whatever happens to its variant.
  const variant = await registerInt8Variant(ctx, job, registered, metadata, caller).catch((err: unknown) => {
    ctx.logger.warn({ err, job: job.id }, 'registering the INT8 variant failed');
    return { error: err instanceof Error ? err.message : String(err) };
  });
  if (variant) registered = { ...registered, int8_variant: 'error' in variant ? variant : { version: variant.version, gate_passed: variant.passed } };
  await ctx.store.updateJob(job.id, { registered: { ...registered, name: registered.name, version: registered.version } });
  await ctx.tracker.setTags(job.runId, { 'xray.registered_model': `${registered.name}/${registered.version}` });
  ctx.platform.audit.record({
    actor,
    action: 'training.register',
    resource: `training-job:${job.id}`,
    requestId: requestId ?? null,
    service: SERVICE_NAME,
    details: { name: registered.name, version: registered.version, onnx_sha256: onnx.sha256, ...(variant ? { int8_variant: registered.int8_variant } : {}) },
  });
  ctx.live.notify(job.id);
  return registered;
}

/**
 * Registers the job's INT8 file, when it has one with a measured parity gate, as the next version of
 * the same model: a variant of the FP32 version just registered (its parent), with the gate's
 * verdict under `metadata.variant` and its own AUC (ONNX Runtime, validation split) as its metrics.
 * A variant that failed the gate is still registered, for the record; the registry never promotes it
 * and the deployment never serves it. Returns null when the job has no measured INT8 variant.
 */
async function registerInt8Variant(
  ctx: TrainingContext,
  job: JobRecord,
  parent: RegisteredModel,
  fp32Metadata: Record<string, unknown>,
  caller: { actor: string; role: RegisterModelInput['role']; requestId?: string },
): Promise<{ version: number | string; passed: boolean } | null> {
  const onnx = job.artifacts.onnx_int8;
  const gate = int8GateSchema.safeParse((job.parity as Record<string, unknown> | null)?.int8);
  if (!onnx || !gate.success) return null;
  const registrar = await ctx.registrar();
  const objects = ctx.platform.objects;
  const canary = job.artifacts.canary_int8;
  const { parity: _fp32Parity, test_metrics: _fp32Tests, ...inherited } = fp32Metadata;
  const variant = await registrar.register({
    name: parent.name,
    jobId: job.id,
    runId: job.runId,
    runArtifactPath: job.runId ? 'model/model.int8.onnx' : undefined,
    onnx,
    onnxBytes: () => objects.get(onnx.key),
    metadata: {
      ...inherited,
      metrics: { auc: gate.data.auc_int8, n: gate.data.n, measured_by: 'the INT8 parity gate (onnxruntime-node, validation split)' },
      parent: { name: parent.name, version: Number(parent.version) },
      variant: { kind: 'int8', of: { name: parent.name, version: Number(parent.version) }, gate: gate.data },
    },
    actor: caller.actor,
    role: caller.role,
    requestId: caller.requestId,
    extraArtifacts: canary ? [{ path: 'canary.json', data: await objects.get(canary.key), contentType: 'application/json' }] : [],
    datasetVersion: job.datasetVersion,
  });
  return { version: variant.version, passed: gate.data.passed };
}
