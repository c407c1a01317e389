import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isAppError } from '../../../src/core/errors.js';
import { toModelInput } from '../../../src/core/imaging/index.js';
import { OrtSession } from '../../../src/deployment/service/ort-session.js';

const MODEL = readFileSync(path.resolve(import.meta.dirname, '../../fixtures/tiny-model.onnx'));
const OPTIONS = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const };

describe('OrtSession: an ONNX Runtime session in its own thread', () => {
  it('reports the model, and 8-bit pixels give exactly what their pixel / 255 tensor gives', async () => {
    const session = await OrtSession.create(MODEL, OPTIONS);
    try {
      const input = session.inputMetadata[0]!;
      assert.equal(input.type, 'float32');
      const size = Number(input.shape[2]);
      assert.ok(size > 0);
      const pixels = Uint8Array.from({ length: 2 * size * size }, (_, i) => (i * 37) % 256);
      const fetches = session.outputMetadata.map((m) => m.name);
      const dims = [2, 1, size, size];
      const floats = new Float32Array(2 * size * size);
      floats.set(toModelInput(pixels.subarray(0, size * size), size), 0);
      floats.set(toModelInput(pixels.subarray(size * size), size), size * size);
      const [fromPixels, fromFloats] = await Promise.all([session.run({ [input.name]: { data: pixels, dims } }, fetches), session.run({ [input.name]: { data: floats, dims } }, fetches)]);
      for (const name of fetches) {
        assert.deepEqual(fromPixels[name]!.dims, fromFloats[name]!.dims);
        assert.deepEqual(Array.from(fromPixels[name]!.data), Array.from(fromFloats[name]!.data));
      }
      // The caller's arrays are copied, not moved.
      assert.equal(pixels.length, 2 * size * size);
      assert.equal(floats.length, 2 * size * size);
    } finally {
      await session.release();
    }
  });

  it('a bad feed is a typed error and the session keeps serving; after release runs are MODEL_NOT_READY', async () => {
    const session = await OrtSession.create(MODEL, OPTIONS);
    const input = session.inputMetadata[0]!;
    const size = Number(input.shape[2]);
    await assert.rejects(session.run({ [input.name]: { data: new Float32Array(3), dims: [1, 1, size, size] } }, [session.outputMetadata[0]!.name]), (err) => isAppError(err) && err.code === 'INTERNAL');
    const ok = await session.run({ [input.name]: { data: new Float32Array(size * size), dims: [1, 1, size, size] } }, [session.outputMetadata[0]!.name]);
    assert.ok(Number.isFinite(ok[session.outputMetadata[0]!.name]!.data[0]));
    await session.release();
    await assert.rejects(session.run({ [input.name]: { data: new Float32Array(size * size), dims: [1, 1, size, size] } }, []), (err) => isAppError(err) && err.code === 'MODEL_NOT_READY');
  });

  it('bytes that are not a model fail creation with ONNX Runtime\'s message', async () => {
    await assert.rejects(OrtSession.create(new Uint8Array([1, 2, 3, 4]), OPTIONS), (err) => err instanceof Error && err.message.length > 0);
  });
});
