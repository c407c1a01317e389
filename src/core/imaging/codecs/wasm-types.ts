/** The shape shared by the cornerstone WASM frame decoders (CharLS, OpenJPEG, OpenJPH builds). */
export interface WasmFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  /** OpenJPEG and OpenJPH only; JPEG-LS has no signed samples. */
  isSigned?: boolean;
}

export interface WasmFrameDecoder {
  /** A view of `length` bytes inside the module's heap to copy the codestream into. */
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): WasmFrameInfo;
  /** A view of the decoded samples inside the module's heap (valid until `delete`). */
  getDecodedBuffer(): Uint8Array;
  delete(): void;
}

export interface JpegLsFrameDecoder extends WasmFrameDecoder {
  /** 0 none (planar output), 1 line, 2 sample (both pixel-interleaved output). */
  getInterleaveMode(): number;
}
