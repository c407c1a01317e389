import type { Database } from '../../core/db/index.js';
import { AppError } from '../../core/errors.js';
import type { ObjectStore } from '../../core/objects/index.js';
import { KyselyImageStore } from '../../data-pipeline/store/image-store.js';
import type { ImageBytesSource } from '../dataplane.js';

/** Reads images the data pipeline ingested (metadata row → content-addressed object) by sha256. */
export class StoredImages implements ImageBytesSource {
  readonly #images: KyselyImageStore;
  readonly #objects: ObjectStore;

  constructor(database: Database, objects: ObjectStore) {
    this.#images = new KyselyImageStore(database);
    this.#objects = objects;
  }

  async read(hash: string): Promise<Uint8Array> {
    const record = await this.#images.get(hash);
    if (!record) throw new AppError('NOT_FOUND', `no stored image has sha256 ${hash}`);
    return this.#objects.get(record.objectKey);
  }
}
