import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { InferenceSession } from 'onnxruntime-node';
import type { Logger } from 'pino';
import { AppError } from '../../core/errors.js';
import { parsePreprocessSpec, preprocessingHash, type PreprocessSpec, type PreprocessSpecInput } from '../../core/imaging/index.js';
import { DynamicBatcher, type BatcherHooks, type BatchingOptions } from './batcher.js';
import { executionProviders } from './execution-providers.js';
import { OrtSession, type OrtFeedData } from './ort-session.js';
import { readOnnxMetadata } from '../../core/ml/onnx-metadata.js';
import { applyServingTemperature } from '../../core/ml/calibration.js';

/** Where a model came from and what the registry says about it (the file's metadata fills gaps). */
export interface ModelIdentity {
  name: string;
  version: string;
  /** Registry alias it was loaded through ('production', …), if any. */
  alias?: string | null;
  source: { kind: 'registry' | 'file'; uri: string };
  /** The preprocessing recorded with the model (registry); else `{ size: input_size }`. */
  preprocessing?: PreprocessSpecInput | null;
  /** Overrides the file's `threshold` metadata. */
  threshold?: number | null;
  /**
   * A site calibration's temperature: every served probability is sigmoid(logit(p) / T) of the
   * file's output p (null or absent: the output as is). Raw outputs (runRaw) are never scaled.
   */
  temperature?: number | null;
}

/** One image's share of a batch. */
export interface InferenceOutput {
  /** The served probability: the file's output under the site temperature, if any. */
  probability: number;
  /** The file's own output, before any site temperature. */
  rawProbability: number;
  /** This image's `features` map (C·h·w values, CHW), or null when the model has none. */
  features: Float32Array | null;
}

/** A raw model call: n images in, n probabilities (and feature maps) out. */
export interface RawOutput {
  probability: Float32Array;
  features: Float32Array | null;
}

export type HeatmapMethod = 'cam' | 'occlusion';

export interface ModelOptions {
  batching: BatchingOptions;
  hooks?: BatcherHooks;
  /** Intra-op threads (default: the machine's cores). */
  threads?: number;
  /**
   * Let ORT's intra-op threads spin between operators (default false): spinning shaves latency on
   * an idle machine but steals the cores image decoding needs under load.
   */
  spinning?: boolean;
  logger?: Logger;
}

/** What GET /models shows for one loaded model version. */
export interface ModelDescription {
  name: string;
  version: string;
  alias: string | null;
  state: 'ready' | 'retiring' | 'disposed';
  source: { kind: 'registry' | 'file'; uri: string };
  sha256: string;
  loadedAt: number;
  input: { name: string; datatype: 'FP32'; shape: [number, number, number, number] };
  outputs: { name: string; datatype: 'FP32'; shape: number[] }[];
  threshold: number;
  heatmapMethod: HeatmapMethod;
  preprocessing: PreprocessSpec & { hash: string; verified: boolean };
  batching: BatchingOptions;
  executionProviders: string[];
  inFlight: number;
  queueDepth: number;
  metadata: Record<string, string>;
}

const NUMERIC = (v: string | undefined): number | null => {
  if (v === undefined || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};

/**
 * One ONNX Runtime session with its dynamic batcher and lifecycle: created from the model bytes,
 * checked against the serving contract (input `input` float32 [N,1,S,S] = pixel/255, output
 * `probability` [N,1], optional `features` [N,C,h,w]), warmed up, then leased by requests and
 * retired (disposed once its in-flight requests drain).
 */
export class OnnxModel {
  readonly name: string;
  readonly version: string;
  readonly alias: string | null;
  readonly source: ModelIdentity['source'];
  readonly sha256: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly inputName: string;
  readonly inputSize: number;
  readonly threshold: number;
  /** Site temperature applied to served probabilities (null: none). */
  readonly temperature: number | null;
  readonly preprocessing: PreprocessSpec;
  readonly preprocessingHash: string;
  /** false when the file's preprocessing_hash could not be matched to the spec used to serve it. */
  readonly preprocessingVerified: boolean;
  readonly classifierWeight: Float32Array | null;
  readonly classifierBias: number;
  /** Takes one image: float32 pixel / 255 values, or the 8-bit pixels themselves. */
  readonly batcher: DynamicBatcher<OrtFeedData, InferenceOutput>;
  readonly loadedAt = Date.now();
  readonly providers: string[];
  readonly #session: OrtSession;
  readonly #probabilityOutput: string;
  readonly #featuresOutput: string | null;
  #featureShape: [number, number, number] | null = null;
  #leases = 0;
  #state: 'ready' | 'retiring' | 'disposed' = 'ready';
  #disposed: Promise<void> | null = null;
  #onDrained: (() => void) | null = null;

  private constructor(session: OrtSession, identity: ModelIdentity, bytes: Uint8Array, providers: string[], options: ModelOptions) {
    this.#session = session;
    this.providers = providers;
    this.name = identity.name;
    this.version = identity.version;
    this.alias = identity.alias ?? null;
    this.source = identity.source;
    this.sha256 = createHash('sha256').update(bytes).digest('hex');
    this.metadata = Object.freeze(readOnnxMetadata(bytes));

    const input = session.inputMetadata.find((m) => m.name === 'input') ?? session.inputMetadata[0];
    if (!input || !input.isTensor) throw contract('it has no tensor input');
    if (input.type !== 'float32') throw contract(`input '${input.name}' is ${input.type}, expected float32`);
    const shape = input.shape;
    if (shape.length !== 4 || (typeof shape[1] === 'number' && shape[1] !== 1)) {
      throw contract(`input '${input.name}' has shape [${shape.join(', ')}], expected [N, 1, S, S]`);
    }
    const metaSize = NUMERIC(this.metadata.input_size);
    const graphSize = typeof shape[2] === 'number' ? shape[2] : typeof shape[3] === 'number' ? shape[3] : null;
    if (graphSize !== null && metaSize !== null && graphSize !== metaSize) {
      throw contract(`input is ${graphSize}x${graphSize} but metadata input_size says ${metaSize}`);
    }
    const size = graphSize ?? metaSize;
    if (!size || !Number.isInteger(size) || size < 8) throw contract('its input size is unknown (no fixed input shape and no input_size metadata)');
    this.inputName = input.name;
    this.inputSize = size;

    const outputs = session.outputMetadata;
    const prob = outputs.find((m) => m.name === 'probability') ?? outputs[0];
    if (!prob) throw contract('it has no outputs');
    this.#probabilityOutput = prob.name;
    const feats = outputs.find((m) => m.name === 'features' && m.isTensor && m.shape.length === 4);
    this.#featuresOutput = feats ? feats.name : null;

    const threshold = identity.threshold ?? NUMERIC(this.metadata.threshold) ?? 0.5;
    if (!(threshold > 0 && threshold < 1)) throw contract(`threshold ${threshold} is not in (0, 1)`);
    this.threshold = threshold;
    const temperature = identity.temperature ?? null;
    if (temperature !== null && !(Number.isFinite(temperature) && temperature > 0)) throw contract(`site temperature ${temperature} is not a finite number > 0`);
    this.temperature = temperature;

    const weight = parseWeights(this.metadata.classifier_weight);
    this.classifierWeight = weight;
    this.classifierBias = NUMERIC(this.metadata.classifier_bias) ?? 0;

    const spec = parsePreprocessSpec({ ...(identity.preprocessing ?? {}), size: identity.preprocessing?.size ?? size });
    if (spec.size !== size) throw contract(`its preprocessing size ${spec.size} differs from its input size ${size}`);
    this.preprocessing = spec;
    this.preprocessingHash = preprocessingHash(spec);
    const recorded = (this.metadata.preprocessing_hash ?? '').trim();
    this.preprocessingVerified = recorded !== '' && recorded === this.preprocessingHash;
    if (recorded && !this.preprocessingVerified) {
      if (identity.preprocessing) {
        throw contract(`the registry's preprocessing spec hashes to ${this.preprocessingHash.slice(0, 12)}… but the model was trained on ${recorded.slice(0, 12)}… (train/serve skew)`);
      }
      options.logger?.warn({ model: this.name, version: this.version }, 'no preprocessing spec recorded with this model; serving with the default spec for its input size');
    }
    this.batcher = new DynamicBatcher((inputs) => this.#runBatch(inputs), options.batching, options.hooks);
  }

  /**
   * Creates the session (graph optimisation 'all', intra-op threads = cores, CUDA first when
   * available), checks the serving contract and warms the model up.
   * @throws AppError UNPROCESSABLE when the bytes are not a usable model.
   */
  static async create(bytes: Uint8Array, identity: ModelIdentity, options: ModelOptions): Promise<OnnxModel> {
    const threads = options.threads ?? availableParallelism();
    const base: InferenceSession.SessionOptions = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      enableCpuMemArena: true,
      // Memory patterns plan and keep buffers per input shape, i.e. per batch size the batcher
      // forms: measured on 2 cores, EfficientNet-B0 took +189 MB with them and +70 MB without
      // over batches 1–4, at the same images/s (bench/serve.ts prints RSS).
      enableMemPattern: false,
      extra: { session: { intra_op: { allow_spinning: options.spinning ? '1' : '0' } } },
    };
    let providers = executionProviders();
    let session: OrtSession;
    try {
      session = await OrtSession.create(bytes, { ...base, executionProviders: providers });
    } catch (err) {
      if (providers[0] === 'cpu') throw new AppError('UNPROCESSABLE', `not a loadable ONNX model: ${firstLine(err)}`);
      options.logger?.warn({ err: firstLine(err) }, 'CUDA execution provider failed; using CPU');
      providers = ['cpu'];
      try {
        session = await OrtSession.create(bytes, { ...base, executionProviders: providers });
      } catch (err2) {
        throw new AppError('UNPROCESSABLE', `not a loadable ONNX model: ${firstLine(err2)}`);
      }
    }
    let model: OnnxModel;
    try {
      model = new OnnxModel(session, identity, bytes, providers, options);
      await model.#warmUp(options.batching.maxBatchSize);
    } catch (err) {
      await session.release().catch(() => {});
      throw err;
    }
    return model;
  }

  get state(): 'ready' | 'retiring' | 'disposed' {
    return this.#state;
  }

  get inFlight(): number {
    return this.#leases;
  }

  /** [C, h, w] of one image's feature map, or null without a features output. */
  get featureShape(): [number, number, number] | null {
    return this.#featureShape;
  }

  /** How this model's heatmaps are made: class activation map when possible. */
  get heatmapMethod(): HeatmapMethod {
    return this.#featureShape && this.classifierWeight && this.classifierWeight.length === this.#featureShape[0] ? 'cam' : 'occlusion';
  }

  /**
   * Leases the model for one request; the returned function ends the lease. A retired model is
   * disposed only after its last lease ends, so a hot swap never fails a request in flight.
   */
  acquire(): () => void {
    if (this.#state === 'disposed') throw new AppError('MODEL_NOT_READY', `model ${this.name} version ${this.version} was unloaded`);
    this.#leases++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#leases--;
      if (this.#leases === 0 && this.#onDrained) this.#onDrained();
    };
  }

  /** Stops taking part in routing; disposes the session once every lease and batch is done. */
  retire(): Promise<void> {
    if (this.#disposed) return this.#disposed;
    this.#state = 'retiring';
    this.#disposed = (async () => {
      if (this.#leases > 0) await new Promise<void>((resolve) => (this.#onDrained = resolve));
      await this.batcher.drain();
      this.#state = 'disposed';
      await this.#session.release().catch(() => {});
    })();
    return this.#disposed;
  }

  /**
   * Runs n images (n·S·S values, NCHW: float32 pixel / 255, or 8-bit pixels) in one call, outside
   * the batcher (occlusion maps, the benchmark's bare-ORT ceiling).
   */
  async runRaw(data: OrtFeedData, n: number): Promise<RawOutput> {
    const s = this.inputSize;
    if (data.length !== n * s * s) throw new AppError('INVALID_INPUT', `expected ${n}x1x${s}x${s} = ${n * s * s} values, got ${data.length}`);
    if (this.#state === 'disposed') throw new AppError('MODEL_NOT_READY', `model ${this.name} version ${this.version} was unloaded`);
    const feeds = { [this.inputName]: { data, dims: [n, 1, s, s] } };
    const fetches = this.#featuresOutput ? [this.#probabilityOutput, this.#featuresOutput] : [this.#probabilityOutput];
    const out = await this.#session.run(feeds, fetches);
    const probData = out[this.#probabilityOutput]!.data;
    let probability: Float32Array;
    if (probData.length === n) probability = probData;
    else if (probData.length === 2 * n) probability = Float32Array.from({ length: n }, (_, i) => probData[2 * i + 1]!);
    else throw new AppError('INTERNAL', `model output '${this.#probabilityOutput}' has ${probData.length} values for ${n} images`);
    let features: Float32Array | null = null;
    if (this.#featuresOutput) {
      const f = out[this.#featuresOutput]!;
      const [, c, h, w] = f.dims;
      this.#featureShape ??= [c!, h!, w!];
      features = f.data;
    }
    return { probability, features };
  }

  async #runBatch(inputs: OrtFeedData[]): Promise<InferenceOutput[]> {
    const plane = this.inputSize * this.inputSize;
    const n = inputs.length;
    let data: OrtFeedData;
    if (n === 1) data = inputs[0]!;
    else if (inputs.every((x) => x instanceof Uint8Array)) {
      const bytes = new Uint8Array(n * plane);
      inputs.forEach((x, i) => bytes.set(x, i * plane));
      data = bytes;
    } else {
      const floats = new Float32Array(n * plane);
      inputs.forEach((x, i) => {
        if (x instanceof Float32Array) floats.set(x, i * plane);
        else for (let k = 0; k < plane; k++) floats[i * plane + k] = x[k]! / 255;
      });
      data = floats;
    }
    const { probability, features } = await this.runRaw(data, n);
    const per = features ? features.length / n : 0;
    return inputs.map((_, i) => ({
      probability: applyServingTemperature(probability[i]!, this.temperature),
      rawProbability: probability[i]!,
      features: features ? features.slice(i * per, (i + 1) * per) : null,
    }));
  }

  async #warmUp(maxBatch: number): Promise<void> {
    const plane = this.inputSize * this.inputSize;
    const one = await this.runRaw(new Float32Array(plane).fill(0.5), 1);
    if (!Number.isFinite(one.probability[0])) throw contract('warm-up produced a non-finite probability');
    const n = Math.min(Math.max(maxBatch, 1), 16);
    if (n > 1) await this.runRaw(new Float32Array(n * plane).fill(0.5), n);
  }

  describe(): ModelDescription {
    const s = this.inputSize;
    const outputs: ModelDescription['outputs'] = [{ name: this.#probabilityOutput, datatype: 'FP32', shape: [-1, 1] }];
    if (this.#featuresOutput && this.#featureShape) outputs.push({ name: this.#featuresOutput, datatype: 'FP32', shape: [-1, ...this.#featureShape] });
    return {
      name: this.name,
      version: this.version,
      alias: this.alias,
      state: this.#state,
      source: this.source,
      sha256: this.sha256,
      loadedAt: this.loadedAt,
      input: { name: this.inputName, datatype: 'FP32', shape: [-1, 1, s, s] },
      outputs,
      threshold: this.threshold,
      heatmapMethod: this.heatmapMethod,
      preprocessing: { ...this.preprocessing, hash: this.preprocessingHash, verified: this.preprocessingVerified },
      batching: this.batcher.options,
      executionProviders: this.providers,
      inFlight: this.#leases,
      queueDepth: this.batcher.depth,
      metadata: { ...this.metadata },
    };
  }
}

function parseWeights(raw: string | undefined): Float32Array | null {
  if (!raw) return null;
  try {
    const parsed: unknown = JSON.parse(raw);
    const flat = Array.isArray(parsed) ? (parsed.flat(2) as unknown[]) : null;
    if (!flat || flat.length === 0 || !flat.every((v) => typeof v === 'number' && Number.isFinite(v))) return null;
    return Float32Array.from(flat as number[]);
  } catch {
    return null;
  }
}

function contract(why: string): AppError {
  return new AppError('UNPROCESSABLE', `model does not follow the serving contract: ${why}`);
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);
}
