/**
 * Minimal typings for the compressed-pixel decoders (none ships its own). The cornerstone WASM
 * codecs are Emscripten factories resolving to the module; `wasm.ts` gives the module its shape
 * (`wasm-types.ts`). Only what src/core/imaging/codecs calls is declared.
 */
declare module '@cornerstonejs/codec-charls/decodewasmjs' {
  const factory: (options?: { print?: (text: string) => void; printErr?: (text: string) => void }) => Promise<unknown>;
  export default factory;
}

declare module '@cornerstonejs/codec-openjpeg/decodewasmjs' {
  const factory: (options?: { print?: (text: string) => void; printErr?: (text: string) => void }) => Promise<unknown>;
  export default factory;
}

declare module '@cornerstonejs/codec-openjph/wasmjs' {
  const factory: (options?: { print?: (text: string) => void; printErr?: (text: string) => void }) => Promise<unknown>;
  export default factory;
}
