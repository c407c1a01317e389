import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

/** The tolerance the issue sets for ONNX vs PyTorch probabilities. */
export const PARITY_TOLERANCE = 1e-4;

export interface ParityResult {
  method: 'onnxruntime-node';
  n: number;
  max_abs_diff: number;
  tolerance: number;
  ok: boolean;
}

interface ParitySamples {
  input_size: number;
  tolerance?: number;
  items: { input_png: string; probability: number; label?: number; file?: string }[];
}

/**
 * Repeats the worker's parity check in TypeScript when it reported `deferred`: the exported ONNX
 * model is run with onnxruntime-node on the worker's reference inputs (8-bit PNGs at the model's
 * input size, scaled pixel/255 into `input` [N,1,S,S]) and the `probability` output is compared
 * with the probabilities PyTorch gave for the same inputs.
 * @param samplesFile the worker's parity_samples.json (PNG paths are relative to its folder)
 */
export async function onnxParity(onnxFile: string, samplesFile: string): Promise<ParityResult> {
  const samples = JSON.parse(await readFile(samplesFile, 'utf8')) as ParitySamples;
  const size = samples.input_size;
  const n = samples.items.length;
  if (!Number.isInteger(size) || size < 1 || n === 0) throw new Error(`${samplesFile}: no samples to compare`);
  const base = path.dirname(samplesFile);
  const input = new Float32Array(n * size * size);
  for (let i = 0; i < n; i++) {
    const item = samples.items[i]!;
    const { data, info } = await sharp(path.resolve(base, item.input_png)).greyscale().raw().toBuffer({ resolveWithObject: true });
    if (info.width !== size || info.height !== size || info.channels !== 1) {
      throw new Error(`${item.input_png}: expected ${size}x${size} greyscale, got ${info.width}x${info.height}x${info.channels}`);
    }
    for (let j = 0; j < size * size; j++) input[i * size * size + j] = data[j]! / 255;
  }
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(onnxFile, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const out = await session.run({ input: new ort.Tensor('float32', input, [n, 1, size, size]) });
    const probs = out.probability?.data as Float32Array | undefined;
    if (!probs || probs.length !== n) throw new Error(`ONNX model did not return 'probability' [${n},1]`);
    let maxDiff = 0;
    for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(probs[i]! - samples.items[i]!.probability));
    return { method: 'onnxruntime-node', n, max_abs_diff: maxDiff, tolerance: PARITY_TOLERANCE, ok: maxDiff <= PARITY_TOLERANCE };
  } finally {
    await session.release().catch(() => {});
  }
}

/** Reference images a registered version carries for the deployment's canary load (at most this many). */
export const CANARY_ITEMS = 8;

/**
 * `canary.json` for the model registry: the first few parity samples (8-bit PNGs at the input
 * size, inlined as base64) with the probabilities PyTorch gave them. The deployment's canary load
 * runs them before a promotion moves the production alias. `expected` replaces PyTorch's probabilities
 * (an INT8 variant's canary: its own ONNX Runtime outputs for the same images, in the samples' order).
 */
export async function canaryReference(samplesFile: string, maxItems = CANARY_ITEMS, expected?: { probabilities: ArrayLike<number>; tolerance: number }): Promise<Buffer> {
  const samples = JSON.parse(await readFile(samplesFile, 'utf8')) as ParitySamples;
  const base = path.dirname(samplesFile);
  const items = [];
  for (const [i, item] of samples.items.slice(0, maxItems).entries()) {
    const png = await readFile(path.resolve(base, item.input_png));
    const probability = expected ? expected.probabilities[i] : item.probability;
    if (typeof probability !== 'number') throw new Error(`${samplesFile}: no expected probability for sample ${i}`);
    items.push({ png: png.toString('base64'), probability, label: item.label, file: item.file });
  }
  if (items.length === 0) throw new Error(`${samplesFile}: no samples to record`);
  return Buffer.from(JSON.stringify({ format: 'xray-canary/1', input_size: samples.input_size, tolerance: expected?.tolerance ?? samples.tolerance ?? PARITY_TOLERANCE, items }));
}
