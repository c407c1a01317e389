import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, utimes, writeFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { AppError } from '../errors.js';
import { validateKey, validatePrefix, type ListPage, type ObjectInfo, type ObjectStore } from './object-store.js';

const TMP_DIR = '.tmp';

/** Local filesystem object store: atomic writes via temp file + rename inside the root. */
export class FsObjectStore implements ObjectStore {
  readonly kind = 'fs' as const;
  readonly #root: string;

  constructor(root: string) {
    this.#root = path.resolve(root);
  }

  #path(key: string): string {
    const p = path.join(this.#root, validateKey(key));
    if (!p.startsWith(this.#root + path.sep)) throw new AppError('INVALID_INPUT', `invalid object key '${key}'`);
    return p;
  }

  async #tmpPath(): Promise<string> {
    const dir = path.join(this.#root, TMP_DIR);
    await mkdir(dir, { recursive: true });
    return path.join(dir, randomUUID());
  }

  async put(key: string, data: Buffer | Uint8Array | string): Promise<void> {
    const target = this.#path(key);
    const tmp = await this.#tmpPath();
    try {
      await writeFile(tmp, data);
      await mkdir(path.dirname(target), { recursive: true });
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async putStream(key: string, body: Readable): Promise<number> {
    const target = this.#path(key);
    const tmp = await this.#tmpPath();
    try {
      await pipeline(body, createWriteStream(tmp));
      const { size } = await stat(tmp);
      await mkdir(path.dirname(target), { recursive: true });
      await rename(tmp, target);
      return size;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.#path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new AppError('NOT_FOUND', `object '${key}' does not exist`);
      throw err;
    }
  }

  async getStream(key: string): Promise<Readable> {
    const p = this.#path(key);
    if (!(await this.exists(key))) throw new AppError('NOT_FOUND', `object '${key}' does not exist`);
    return createReadStream(p);
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const s = await stat(this.#path(key));
      return s.isFile() ? { key, size: s.size, modified: s.mtimeMs } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async touch(key: string): Promise<void> {
    const now = new Date();
    try {
      await utimes(this.#path(key), now, now);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new AppError('NOT_FOUND', `object '${key}' does not exist`);
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true });
  }

  async list(prefix: string, options: { pageSize?: number; pageToken?: string } = {}): Promise<ListPage> {
    validatePrefix(prefix);
    const pageSize = Math.min(Math.max(options.pageSize ?? 1000, 1), 10000);
    const all: ObjectInfo[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        if (rel === '' && e.name === TMP_DIR) continue;
        const childRel = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          const mayHoldMatches = prefix.startsWith(childRel + '/') || (childRel + '/').startsWith(prefix);
          if (mayHoldMatches) await walk(path.join(dir, e.name), childRel);
        } else if (e.isFile() && childRel.startsWith(prefix)) {
          const s = await stat(path.join(dir, e.name));
          all.push({ key: childRel, size: s.size, modified: s.mtimeMs });
        }
      }
    };
    await walk(this.#root, '');
    all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const start = options.pageToken ? all.findIndex((o) => o.key > options.pageToken!) : 0;
    const from = start < 0 ? all.length : start;
    const items = all.slice(from, from + pageSize);
    const nextPageToken = from + pageSize < all.length ? items[items.length - 1]?.key : undefined;
    return nextPageToken ? { items, nextPageToken } : { items };
  }

  async ping(): Promise<boolean> {
    try {
      await mkdir(this.#root, { recursive: true });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {}
}
