import { AppError } from '../../core/errors.js';
import { readOnnxMetadata } from '../../core/ml/onnx-metadata.js';

/** What registration needs to know about an ONNX file, read by loading it in ONNX Runtime. */
export interface OnnxInspection {
  inputName: string;
  /** e.g. ['batch', 1, 224, 224]; symbolic dimensions stay strings. */
  inputShape: (number | string)[];
  /** H (= W) when the file fixes it, else null. */
  inputSize: number | null;
  outputNames: string[];
  hasFeatures: boolean;
  /** The file's metadata_props (strings, as the exporter wrote them). */
  metadataProps: Record<string, string>;
}

const PROBABILITY = 'probability';
const FEATURES = 'features';

/**
 * Loads the bytes with onnxruntime-node and checks the serving contract of trainer/export.py:
 * one image input shaped [N, 1, H, W] (N and H, W may be symbolic) and an output named
 * `probability`; a `features` output (for CAM heatmaps) is optional. When the size is known it
 * also runs one all-zero image through the model and checks the probability is one number in [0, 1].
 * Throws UNPROCESSABLE with the reason otherwise.
 */
export async function inspectOnnx(bytes: Buffer, expectedSize?: number | null): Promise<OnnxInspection> {
  const ort = await import('onnxruntime-node');
  const metadataProps = safeMetadata(bytes);
  const recordedSize = expectedSize ?? positiveInt(metadataValue(metadataProps, 'input_size'));
  let session: import('onnxruntime-node').InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes);
  } catch (err) {
    throw new AppError('UNPROCESSABLE', `not a loadable ONNX model: ${firstLine(err)}`);
  }
  try {
    const inputs = session.inputMetadata;
    if (inputs.length !== 1) throw new AppError('UNPROCESSABLE', `the model must take exactly one input tensor [N,1,H,W]; it takes ${inputs.length} (${session.inputNames.join(', ')})`);
    const input = inputs[0]!;
    const shape = input.isTensor ? (input.shape as (number | string)[]) : [];
    if (!input.isTensor || input.type !== 'float32' || shape.length !== 4) {
      throw new AppError('UNPROCESSABLE', `input '${input.name}' must be a float32 tensor [N,1,H,W]; found ${input.isTensor ? `${input.type} [${shape.join(',')}]` : 'a non-tensor'}`);
    }
    const [, channels, h, w] = shape;
    if (typeof channels === 'number' && channels !== 1) throw new AppError('UNPROCESSABLE', `input '${input.name}' must have 1 channel (grayscale X-ray); it has ${channels}`);
    if (typeof h === 'number' && typeof w === 'number' && h !== w) throw new AppError('UNPROCESSABLE', `input '${input.name}' must be square; it is ${h}x${w}`);
    const outputNames = [...session.outputNames];
    if (!outputNames.includes(PROBABILITY)) {
      throw new AppError('UNPROCESSABLE', `the model must have an output named '${PROBABILITY}'; its outputs are ${outputNames.map((n) => `'${n}'`).join(', ')}`);
    }
    const fixed = typeof h === 'number' ? h : null;
    if (fixed !== null && recordedSize && recordedSize !== fixed) {
      throw new AppError('UNPROCESSABLE', `the recorded input size ${recordedSize} does not match the model's input ${fixed}x${fixed}`);
    }
    const size = fixed ?? recordedSize ?? null;
    if (size !== null) {
      if (!Number.isInteger(size) || size < 1 || size > 4096) throw new AppError('UNPROCESSABLE', `implausible input size ${size}`);
      const x = new ort.Tensor('float32', new Float32Array(size * size), [1, 1, size, size]);
      let result: Record<string, import('onnxruntime-node').Tensor>;
      try {
        result = (await session.run({ [input.name]: x }, [PROBABILITY])) as Record<string, import('onnxruntime-node').Tensor>;
      } catch (err) {
        throw new AppError('UNPROCESSABLE', `the model loads but fails on a 1x1x${size}x${size} input: ${firstLine(err)}`);
      }
      const p = result[PROBABILITY]!;
      const value = Number((p.data as Float32Array)[0]);
      if (p.data.length !== 1 || !(value >= 0 && value <= 1)) {
        throw new AppError('UNPROCESSABLE', `output '${PROBABILITY}' must be one probability in [0,1] per image; got [${p.dims.join(',')}] with first value ${value}`);
      }
    }
    return {
      inputName: input.name,
      inputShape: shape,
      inputSize: size,
      outputNames,
      hasFeatures: outputNames.includes(FEATURES),
      metadataProps,
    };
  } finally {
    await session.release().catch(() => {});
  }
}

function safeMetadata(bytes: Buffer): Record<string, string> {
  try {
    return readOnnxMetadata(bytes);
  } catch {
    return {};
  }
}

function positiveInt(x: unknown): number | null {
  const n = typeof x === 'string' ? Number(x) : x;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : null;
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!.slice(0, 300);
}

/** A metadata_props value as JSON when it parses, else the raw string. */
export function metadataValue(props: Record<string, string>, key: string): unknown {
  const raw = props[key];
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
