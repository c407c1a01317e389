import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readOnnxMetadata } from '../../../src/core/ml/onnx-metadata.js';
import { TINY_MODEL } from '../../deployment/helpers.js';

describe('readOnnxMetadata', () => {
  test('reads metadata_props of an exported model', () => {
    const meta = readOnnxMetadata(readFileSync(TINY_MODEL));
    assert.deepEqual(JSON.parse(meta.classifier_weight!), [3, -3]);
    assert.equal(meta.input_size, '16');
    assert.equal(meta.threshold, '0.5');
  });

  test('malformed bytes are refused as UNPROCESSABLE, not crashed on', () => {
    const bytes = readFileSync(TINY_MODEL);
    assert.throws(() => readOnnxMetadata(bytes.subarray(0, bytes.length - 7)), /malformed/);
    assert.throws(() => readOnnxMetadata(Buffer.from([0xff, 0xff, 0xff])), /malformed/);
    assert.deepEqual(readOnnxMetadata(new Uint8Array(0)), {});
  });
});
