import type { DataPipelineClient } from '../../data-pipeline/client/index.js';
import type { ImageBytesSource } from '../dataplane.js';

/** Reads images the data pipeline ingested, by sha256, through its client (in-process or HTTP). */
export class StoredImages implements ImageBytesSource {
  readonly #client: DataPipelineClient;

  constructor(client: DataPipelineClient) {
    this.#client = client;
  }

  async read(hash: string): Promise<Uint8Array> {
    return this.#client.imageBytes(hash);
  }
}
