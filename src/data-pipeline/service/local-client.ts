import type { DataPipelineClient } from '../client/types.js';
import type { DataContext } from './context.js';
import { getImageBytes } from './preprocessed.js';

/** The data pipeline's client in embedded mode: the same calls its routes make, without HTTP. */
export class LocalDataPipelineClient implements DataPipelineClient {
  readonly target = 'in-process';
  readonly #ctx: DataContext;

  constructor(ctx: DataContext) {
    this.#ctx = ctx;
  }

  imageBytes(sha256: string): Promise<Buffer> {
    return getImageBytes(this.#ctx, sha256);
  }
}
