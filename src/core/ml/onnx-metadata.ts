import { AppError } from '../errors.js';

/**
 * Reads `metadata_props` from an ONNX ModelProto without a protobuf library: onnxruntime-node does
 * not expose them, and the exporter stores the classifier weights, threshold and input size there.
 * Only top-level fields are walked; the graph (field 7) is skipped by its length, so this is cheap
 * even for large models.
 */
export function readOnnxMetadata(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const reader = new ProtoReader(bytes);
  while (!reader.done()) {
    const { field, wire } = reader.tag();
    if (field === METADATA_PROPS && wire === LEN) {
      const entry = new ProtoReader(reader.bytes());
      let key = '';
      let value = '';
      while (!entry.done()) {
        const t = entry.tag();
        if (t.wire === LEN && (t.field === 1 || t.field === 2)) {
          const text = DECODER.decode(entry.bytes());
          if (t.field === 1) key = text;
          else value = text;
        } else entry.skip(t.wire);
      }
      if (key) out[key] = value;
    } else reader.skip(wire);
  }
  return out;
}

const METADATA_PROPS = 14;
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const DECODER = new TextDecoder('utf-8', { fatal: false });

class ProtoReader {
  #pos = 0;
  constructor(readonly buf: Uint8Array) {}

  done(): boolean {
    return this.#pos >= this.buf.length;
  }

  tag(): { field: number; wire: number } {
    const v = this.varint();
    return { field: Math.floor(v / 8), wire: v % 8 };
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.buf.length) throw corrupt();
      const b = this.buf[this.#pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw corrupt();
  }

  bytes(): Uint8Array {
    const len = this.varint();
    if (this.#pos + len > this.buf.length) throw corrupt();
    const view = this.buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return view;
  }

  skip(wire: number): void {
    if (wire === VARINT) this.varint();
    else if (wire === I64) this.#advance(8);
    else if (wire === LEN) this.bytes();
    else if (wire === I32) this.#advance(4);
    else throw corrupt();
  }

  #advance(n: number): void {
    if (this.#pos + n > this.buf.length) throw corrupt();
    this.#pos += n;
  }
}

function corrupt(): AppError {
  return new AppError('UNPROCESSABLE', 'not a readable ONNX model (malformed protobuf)');
}
