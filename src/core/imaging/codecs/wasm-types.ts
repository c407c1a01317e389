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

/**
 * The JPEG 2000 family's extras (OpenJPEG, OpenJPH builds): decoding at a lower resolution
 * level. Level 0 is full size, each level halves width and height (rounded up).
 */
export interface WaveletFrameDecoder extends WasmFrameDecoder {
  /** Reads the main header into `getFrameInfo` without decoding (OpenJPH; a no-op in the OpenJPEG build). */
  readHeader(): void;
  /** Wavelet decomposition levels of the codestream, known after `readHeader` (OpenJPH) or a decode. */
  getNumDecompositions(): number;
  /** OpenJPEG: (level, layers; 0 = all quality layers). OpenJPH: (level). Frame info stays full size. */
  decodeSubResolution(level: number, layer?: number): void;
}

export interface JpegLsFrameDecoder extends WasmFrameDecoder {
  /** 0 none (planar output), 1 line, 2 sample (both pixel-interleaved output). */
  getInterleaveMode(): number;
}
