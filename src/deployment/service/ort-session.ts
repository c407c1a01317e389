import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import { AppError } from '../../core/errors.js';

/** A float32 tensor's values, or 8-bit pixels standing for pixel / 255. */
export type OrtFeedData = Float32Array | Uint8Array;

/** A session's input or output as the worker reports it. */
export interface OrtValueInfo {
  name: string;
  isTensor: boolean;
  type: string;
  shape: (number | string)[];
}

/** Messages between {@link OrtSession} and its thread. */
interface OrtWorkerData {
  bytes: Uint8Array;
  /** Resolved path of onnxruntime-node (eval'd code resolves nothing relative to this file). */
  ort: string;
  options: InferenceSession.SessionOptions;
}
type OrtWorkerReady = { ok: true; inputs: OrtValueInfo[]; outputs: OrtValueInfo[] } | { ok: false; message: string };
interface OrtRunRequest {
  op: 'run';
  id: number;
  feeds: Record<string, { data: OrtFeedData; dims: number[] }>;
  fetches: string[];
}
type OrtRunReply = { id: number; ok: true; outputs: Record<string, { data: Float32Array; dims: number[] }> } | { id: number; ok: false; message: string };

/**
 * The thread's whole program, plain CommonJS run with `eval`: it needs nothing but ONNX Runtime,
 * and a .ts entry would need tsx's loader (two more isolates, ~100 MB) in every inference thread.
 * onnxruntime-node runs `session.run` synchronously on the calling thread (its promise only defers
 * the call with setImmediate), so a session on the service's main thread blocks the event loop for
 * a whole batch: no request parsed, no decoded image handed on, no answer written meanwhile.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { InferenceSession, Tensor } = require(workerData.ort);
const info = (m) => (m.isTensor ? { name: m.name, isTensor: true, type: m.type, shape: [...m.shape] } : { name: m.name, isTensor: false, type: '', shape: [] });
async function run(session, msg) {
  try {
    const feeds = {};
    for (const [name, t] of Object.entries(msg.feeds)) {
      let data = t.data;
      if (data instanceof Uint8Array) {
        // 8-bit pixels: the model input is pixel / 255, as toModelInput computes it.
        data = new Float32Array(t.data.length);
        for (let i = 0; i < data.length; i++) data[i] = t.data[i] / 255;
      }
      feeds[name] = new Tensor('float32', data, t.dims);
    }
    const out = await session.run(feeds, msg.fetches);
    const outputs = {};
    for (const [name, t] of Object.entries(out)) {
      outputs[name] = { data: Float32Array.from(t.data), dims: [...t.dims] };
      t.dispose?.();
    }
    return { id: msg.id, ok: true, outputs };
  } catch (err) {
    return { id: msg.id, ok: false, message: String(err && err.message || err) };
  }
}
InferenceSession.create(workerData.bytes, workerData.options).then(
  (session) => {
    parentPort.postMessage({ ok: true, inputs: session.inputMetadata.map(info), outputs: session.outputMetadata.map(info) });
    parentPort.on('message', (msg) => {
      if (msg.op === 'release') return void session.release().finally(() => process.exit(0));
      void run(session, msg).then((reply) => parentPort.postMessage(reply, reply.ok ? Object.values(reply.outputs).map((o) => o.data.buffer) : []));
    });
  },
  (err) => {
    parentPort.postMessage({ ok: false, message: String(err && err.message || err) });
    process.exit(0);
  },
);
`;

/**
 * An ONNX Runtime session living in a worker thread of its own (see WORKER_SOURCE for why).
 * `run` takes and returns plain float32 arrays; the worker keeps the process alive only while a
 * run is in flight.
 */
export class OrtSession {
  readonly inputMetadata: readonly OrtValueInfo[];
  readonly outputMetadata: readonly OrtValueInfo[];
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(o: Record<string, { data: Float32Array; dims: number[] }>): void; reject(err: unknown): void }>();
  #nextId = 0;
  #dead: Error | null = null;

  private constructor(worker: Worker, ready: Extract<OrtWorkerReady, { ok: true }>) {
    this.#worker = worker;
    this.inputMetadata = ready.inputs;
    this.outputMetadata = ready.outputs;
    worker.on('message', (reply: OrtRunReply) => {
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) worker.unref();
      if (reply.ok) p.resolve(reply.outputs);
      else p.reject(new AppError('INTERNAL', `inference failed: ${reply.message.split('\n')[0]!.slice(0, 300)}`));
    });
    const fail = (err: Error) => {
      this.#dead ??= err;
      for (const p of this.#pending.values()) p.reject(new AppError('MODEL_NOT_READY', `the model's inference thread stopped: ${err.message}`));
      this.#pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    worker.unref();
  }

  /**
   * Starts the worker and creates the session in it.
   * @throws Error with ONNX Runtime's message when the session cannot be created.
   */
  static async create(bytes: Uint8Array, options: InferenceSession.SessionOptions): Promise<OrtSession> {
    const data: OrtWorkerData = { bytes, options, ort: createRequire(import.meta.url).resolve('onnxruntime-node') };
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: data, execArgv: [] });
    let onError!: (err: Error) => void;
    let onExit!: (code: number) => void;
    const ready = await new Promise<OrtWorkerReady>((resolve, reject) => {
      onError = reject;
      onExit = (code) => reject(new Error(`the inference thread exited (${code}) before the session was created`));
      worker.once('message', resolve);
      worker.once('error', onError);
      worker.once('exit', onExit);
    }).finally(() => {
      worker.off('error', onError);
      worker.off('exit', onExit);
    });
    if (!ready.ok) {
      await worker.terminate();
      throw new Error(ready.message);
    }
    return new OrtSession(worker, ready);
  }

  /**
   * Runs the model on feeds (copied to the worker; 8-bit pixels become pixel / 255 there, a
   * quarter of the bytes to copy); resolves with the requested outputs.
   */
  run(feeds: Record<string, { data: OrtFeedData; dims: number[] }>, fetches: string[]): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
    if (this.#dead) return Promise.reject(new AppError('MODEL_NOT_READY', `the model's inference thread stopped: ${this.#dead.message}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) this.#worker.ref();
      const request: OrtRunRequest = { op: 'run', id, feeds, fetches };
      this.#worker.postMessage(request);
    });
  }

  /** Releases the session and ends its thread. */
  async release(): Promise<void> {
    if (this.#dead) return;
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.postMessage({ op: 'release' });
    const timer = setTimeout(() => void this.#worker.terminate(), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
