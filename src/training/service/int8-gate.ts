import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { rocAuc } from '../../core/ml/metrics.js';
import { INT8_GATE_LIMITS, type Int8Gate } from '../../model-registry/client/index.js';

/** The worker's int8_gate.json: the validation split at the input size, raw uint8 in `inputs`. */
const gateInputsSchema = z.object({
  format: z.literal('xray-int8-gate/1'),
  input_size: z.number().int().min(1),
  n: z.number().int().min(1),
  inputs: z.string().min(1),
  labels: z.array(z.union([z.literal(0), z.literal(1)])),
});

/** Images per ONNX Runtime call while scoring (the gate's figures do not depend on it). */
const BATCH = 32;

type Session = import('onnxruntime-node').InferenceSession;

async function score(ort: typeof import('onnxruntime-node'), session: Session, pixels: Uint8Array, n: number, size: number): Promise<{ probs: Float64Array; seconds: number }> {
  const area = size * size;
  const probs = new Float64Array(n);
  let seconds = 0;
  for (let start = 0; start < n; start += BATCH) {
    const count = Math.min(BATCH, n - start);
    const input = new Float32Array(count * area);
    for (let j = 0; j < input.length; j++) input[j] = pixels[start * area + j]! / 255;
    const t0 = performance.now();
    const out = await session.run({ input: new ort.Tensor('float32', input, [count, 1, size, size]) });
    seconds += (performance.now() - t0) / 1000;
    const p = out.probability?.data as Float32Array | undefined;
    if (!p || p.length !== count) throw new Error(`the ONNX model did not return 'probability' [${count},1]`);
    for (let i = 0; i < count; i++) probs[start + i] = p[i]!;
  }
  return { probs, seconds };
}

function aucOrNull(labels: number[], probs: Float64Array): number | null {
  const auc = rocAuc(labels, probs);
  return Number.isFinite(auc) ? auc : null;
}

/**
 * The INT8 variant's parity gate, decided by the runtime that serves it: onnxruntime-node scores
 * the validation split (the worker's int8_gate.json + raw inputs) with the FP32 and the INT8 file,
 * and the variant passes when its AUC is at most 0.002 below the FP32 file's and its probabilities
 * differ by at most 0.01 on average (INT8_GATE_LIMITS). Also records each file's throughput on
 * those inputs (same threads, same batches) — the variant's measured speed-up — and hands back the
 * INT8 probabilities in the inputs' order (the validation split's, as the parity samples).
 */
export async function int8ParityGate(fp32File: string, int8File: string, gateFile: string, threads = 1): Promise<{ gate: Int8Gate; int8Probabilities: Float64Array }> {
  const desc = gateInputsSchema.parse(JSON.parse(await readFile(gateFile, 'utf8')));
  const { n, input_size: size, labels } = desc;
  if (labels.length !== n) throw new Error(`${gateFile}: ${labels.length} labels for ${n} images`);
  const pixels = new Uint8Array(await readFile(path.resolve(path.dirname(gateFile), path.basename(desc.inputs))));
  if (pixels.length !== n * size * size) throw new Error(`${desc.inputs}: ${pixels.length} bytes, expected ${n}x${size}x${size}`);
  const ort = await import('onnxruntime-node');
  const options = { executionProviders: ['cpu'], intraOpNumThreads: threads, graphOptimizationLevel: 'all' } as const;
  const fp32 = await ort.InferenceSession.create(fp32File, options);
  const int8 = await ort.InferenceSession.create(int8File, options).catch(async (err: unknown) => {
    await fp32.release().catch(() => {});
    throw err;
  });
  try {
    const a = await score(ort, fp32, pixels, n, size);
    const b = await score(ort, int8, pixels, n, size);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < n; i++) {
      const d = Math.abs(a.probs[i]! - b.probs[i]!);
      sum += d;
      max = Math.max(max, d);
    }
    const mae = sum / n;
    const aucFp32 = aucOrNull(labels, a.probs);
    const aucInt8 = aucOrNull(labels, b.probs);
    const aucDrop = aucFp32 !== null && aucInt8 !== null ? aucFp32 - aucInt8 : null;
    const limits = { ...INT8_GATE_LIMITS };
    const reasons: string[] = [];
    if (aucDrop === null) reasons.push(`the validation split's ${n} images hold one class, so no AUC can be compared`);
    else if (aucDrop > limits.max_auc_drop + 1e-12) reasons.push(`AUC ${aucInt8!.toFixed(4)} is ${aucDrop.toFixed(4)} below the FP32 model's ${aucFp32!.toFixed(4)} (at most ${limits.max_auc_drop})`);
    if (mae > limits.max_probability_mae) reasons.push(`probabilities differ from the FP32 model's by ${mae.toFixed(4)} on average (at most ${limits.max_probability_mae})`);
    const passed = reasons.length === 0;
    const message = passed
      ? `AUC ${aucInt8!.toFixed(4)} vs FP32 ${aucFp32!.toFixed(4)} (drop ${aucDrop!.toFixed(4)} ≤ ${limits.max_auc_drop}), probability MAE ${mae.toFixed(4)} ≤ ${limits.max_probability_mae} on ${n} validation images`
      : reasons.join('; ');
    const speed = a.seconds > 0 && b.seconds > 0
      ? { threads, batch: BATCH, fp32_images_per_s: n / a.seconds, int8_images_per_s: n / b.seconds, speedup: a.seconds / b.seconds }
      : null;
    const gate: Int8Gate = {
      method: 'onnxruntime-node',
      split: 'val',
      n,
      auc_fp32: aucFp32,
      auc_int8: aucInt8,
      auc_drop: aucDrop,
      probability_mae: mae,
      probability_max_abs_diff: max,
      limits,
      passed,
      message,
      speed,
    };
    return { gate, int8Probabilities: b.probs };
  } finally {
    await Promise.all([fp32.release().catch(() => {}), int8.release().catch(() => {})]);
  }
}
