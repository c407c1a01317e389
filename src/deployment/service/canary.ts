import sharp, { type OutputInfo } from 'sharp';
import { z } from 'zod';
import type { Logger } from 'pino';
import { AppError, isAppError } from '../../core/errors.js';
import type { CanaryCheck, CanaryReport } from '../client/types.js';
import type { ModelSource } from './model-source.js';
import { OnnxModel } from './onnx-model.js';

/** The file a trained version carries its reference images and recorded outputs in. */
export const CANARY_ARTIFACT = 'canary.json';

/** Default |Δp| allowed between the outputs recorded at training (PyTorch) and ONNX Runtime here. */
export const CANARY_TOLERANCE = 1e-4;

/**
 * `canary.json`: a few of the model's own validation images exactly as it saw them (8-bit
 * greyscale PNGs at its input size, scaled pixel/255) and the probability PyTorch gave each.
 */
export const canaryReferenceSchema = z.object({
  format: z.literal('xray-canary/1'),
  input_size: z.number().int().min(8).max(4096),
  tolerance: z.number().positive().max(0.5).optional(),
  items: z
    .array(z.object({ png: z.string().min(1).max(16_000_000), probability: z.number().min(0).max(1), label: z.number().int().optional(), file: z.string().optional() }))
    .min(1)
    .max(64),
});
export type CanaryReference = z.infer<typeof canaryReferenceSchema>;

/**
 * Loads a registered version into a session of its own (one thread, never served), so a
 * promotion learns before the alias moves whether the deployment can serve it: the ONNX file
 * loads, follows the serving contract, its input size equals the recorded preprocessing, a
 * warm-up inference is finite, and the reference images give the recorded outputs.
 * @throws AppError MODEL_NOT_FOUND / NOT_FOUND from the source; SERVICE_UNAVAILABLE without one.
 */
export async function runCanary(source: ModelSource | null, name: string, version: string, logger?: Logger): Promise<CanaryReport> {
  if (!source) throw new AppError('SERVICE_UNAVAILABLE', 'no model registry is available to this deployment service, so it cannot canary a registered version');
  const started = performance.now();
  const checks: CanaryCheck[] = [];
  const report = (extra: Partial<CanaryReport> = {}): CanaryReport => {
    const failed = checks.find((c) => !c.passed);
    return {
      name,
      version,
      servable: !failed,
      message: failed ? `version ${version} of '${name}' cannot serve: ${failed.message}` : `version ${version} of '${name}' loads and serves: ${checks.map((c) => c.message).join('; ')}`,
      input_size: null,
      preprocessing: null,
      reference: null,
      checks,
      duration_ms: Math.round(performance.now() - started),
      ...extra,
    };
  };

  const resolved = await source.resolve(name, version).catch((err: unknown) => {
    if (isAppError(err) && err.code === 'UNPROCESSABLE') return err;
    throw err;
  });
  if (resolved instanceof AppError) {
    checks.push({ name: 'resolve', passed: false, message: resolved.message });
    return report();
  }
  const bytes = await resolved.fetch();
  let model: OnnxModel;
  try {
    model = await OnnxModel.create(
      bytes,
      { name: resolved.name, version: resolved.version, alias: null, source: { kind: 'registry', uri: resolved.uri }, preprocessing: resolved.preprocessing, threshold: resolved.threshold, temperature: resolved.temperature ?? null },
      { batching: { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 64 }, threads: 1, logger },
    );
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const stage = /not a loadable ONNX model/.test(message) ? 'load' : /warm-up/.test(message) ? 'warm_up' : 'contract';
    checks.push({ name: stage, passed: false, message });
    return report();
  }
  try {
    checks.push({ name: 'load', passed: true, message: `ONNX session created (sha256 ${model.sha256.slice(0, 12)}…)` });
    const calibrated = model.temperature !== null ? `; served probabilities are sigmoid(logit(p)/${model.temperature.toPrecision(4)}) of the file's output (site calibration)` : '';
    checks.push({ name: 'contract', passed: true, message: `input ${model.inputSize}x${model.inputSize} equals the recorded preprocessing size ${model.preprocessing.size}${calibrated}` });
    checks.push({ name: 'warm_up', passed: true, message: 'warm-up inference is finite' });
    const extra = { input_size: model.inputSize, preprocessing: { size: model.preprocessing.size, hash: model.preprocessingHash } };
    const raw = resolved.fetchArtifact ? await resolved.fetchArtifact(CANARY_ARTIFACT) : null;
    if (!raw) {
      checks.push({ name: 'reference', passed: true, message: `no reference outputs recorded with this version (${CANARY_ARTIFACT}); only the load and warm-up were checked` });
      return report(extra);
    }
    const reference = await compareReference(model, raw);
    checks.push(reference.check);
    return report({ ...extra, reference: reference.result });
  } finally {
    await model.retire();
  }
}

async function compareReference(model: OnnxModel, raw: Uint8Array): Promise<{ check: CanaryCheck; result: CanaryReport['reference'] }> {
  let ref: CanaryReference;
  try {
    ref = canaryReferenceSchema.parse(JSON.parse(Buffer.from(raw).toString('utf8')));
  } catch (err) {
    return { check: { name: 'reference', passed: false, message: `${CANARY_ARTIFACT} is malformed: ${firstIssue(err)}` }, result: null };
  }
  const s = model.inputSize;
  if (ref.input_size !== s) {
    return { check: { name: 'reference', passed: false, message: `${CANARY_ARTIFACT} holds ${ref.input_size}x${ref.input_size} images but the model's input is ${s}x${s}` }, result: null };
  }
  const tolerance = ref.tolerance ?? CANARY_TOLERANCE;
  const input = new Float32Array(ref.items.length * s * s);
  for (const [i, item] of ref.items.entries()) {
    let pixels: { data: Buffer; info: OutputInfo };
    try {
      pixels = await sharp(Buffer.from(item.png, 'base64'), { failOn: 'error', limitInputPixels: s * s }).greyscale().raw().toBuffer({ resolveWithObject: true });
    } catch (err) {
      return { check: { name: 'reference', passed: false, message: `reference image ${i} does not decode: ${err instanceof Error ? err.message : String(err)}` }, result: null };
    }
    if (pixels.info.width !== s || pixels.info.height !== s || pixels.info.channels !== 1) {
      return { check: { name: 'reference', passed: false, message: `reference image ${i} is ${pixels.info.width}x${pixels.info.height}, not ${s}x${s}` }, result: null };
    }
    for (let j = 0; j < s * s; j++) input[i * s * s + j] = pixels.data[j]! / 255;
  }
  const { probability } = await model.runRaw(input, ref.items.length);
  let maxDiff = 0;
  for (const [i, item] of ref.items.entries()) maxDiff = Math.max(maxDiff, Math.abs(probability[i]! - item.probability));
  const n = ref.items.length;
  const result = { n, max_abs_diff: maxDiff, tolerance };
  const passed = maxDiff <= tolerance;
  const message = passed
    ? `${n} reference images give the recorded outputs (max |Δp| ${maxDiff.toExponential(2)} <= ${tolerance}${model.temperature !== null ? "; the file's own outputs, before the site temperature, as recorded at training" : ''})`
    : `${n} reference images do not give the recorded outputs: max |Δp| ${maxDiff.toFixed(4)} > ${tolerance} (a different model file, or a runtime that computes it differently)`;
  return { check: { name: 'reference', passed, message }, result };
}

function firstIssue(err: unknown): string {
  if (err instanceof z.ZodError) return err.issues.slice(0, 2).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  return err instanceof Error ? err.message : String(err);
}
