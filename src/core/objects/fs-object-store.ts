import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, utimes, writeFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { AppError } from '../errors.js';
import { validateKey, validatePrefix, type ListPage, type ObjectInfo, type ObjectStore } from './object-store.js';
import { HEADER_LEN, OVERHEAD, TAG_LENGTH, decryptBuffer, decryptor, encryptBuffer, encryptor, isEncrypted, openHeader, rewrapHeader, type ObjectKeyring } from './envelope.js';

const TMP_DIR = '.tmp';
/** Encrypted objects up to this size are decrypted whole (authenticated before the first byte is returned); larger ones stream. */
const WHOLE_DECRYPT_MAX = 16 * 1024 * 1024;

export interface FsObjectStoreOptions {
  /** Envelope encryption at rest (XRAY_OBJECT_KEY_FILE): every object written is AES-256-GCM encrypted. */
  keyring?: ObjectKeyring;
}

/** What `reencrypt` did. */
export interface ReencryptResult {
  /** Plain objects (written before encryption was turned on) now encrypted. */
  encrypted: number;
  /** Objects whose data key was re-wrapped under the current master key. */
  rewrapped: number;
  /** Already under the current master key. */
  unchanged: number;
}

/**
 * Local filesystem object store: atomic writes via temp file + rename inside the root; with a
 * keyring, envelope encryption at rest (see envelope.ts). Objects written before encryption was
 * turned on stay readable until `reencrypt` encrypts them.
 */
export class FsObjectStore implements ObjectStore {
  readonly kind = 'fs' as const;
  readonly #root: string;
  readonly #madeDirs = new Set<string>();
  readonly #keyring?: ObjectKeyring;

  constructor(root: string, options: FsObjectStoreOptions = {}) {
    this.#root = path.resolve(root);
    this.#keyring = options.keyring;
  }

  /** true when objects are encrypted at rest. */
  get encrypted(): boolean {
    return this.#keyring !== undefined;
  }

  /** The first bytes of a stored file (enough for the header). */
  async #head(file: string): Promise<Buffer> {
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(HEADER_LEN);
      const { bytesRead } = await fh.read(buf, 0, HEADER_LEN, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  #plain(key: string, stored: Buffer): Buffer {
    if (!isEncrypted(stored)) return stored;
    if (!this.#keyring) throw new AppError('UNPROCESSABLE', `object '${key}' is encrypted at rest; set XRAY_OBJECT_KEY_FILE to read it`);
    return decryptBuffer(this.#keyring, key, stored);
  }

  /** Plaintext size of a stored file of `size` bytes. */
  async #plainSize(file: string, size: number): Promise<number> {
    if (!this.#keyring || size < OVERHEAD) return size;
    return isEncrypted(await this.#head(file)) ? size - OVERHEAD : size;
  }

  #path(key: string): string {
    const p = path.join(this.#root, validateKey(key));
    if (!p.startsWith(this.#root + path.sep)) throw new AppError('INVALID_INPUT', `invalid object key '${key}'`);
    return p;
  }

  async #tmpPath(): Promise<string> {
    const dir = path.join(this.#root, TMP_DIR);
    await this.#ensureDir(dir);
    return path.join(dir, randomUUID());
  }

  /** mkdir -p, skipped for a directory this store already made (a put per prediction otherwise pays two mkdirs). */
  async #ensureDir(dir: string): Promise<void> {
    if (this.#madeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    if (this.#madeDirs.size >= 4096) this.#madeDirs.clear();
    this.#madeDirs.add(dir);
  }

  async put(key: string, data: Buffer | Uint8Array | string): Promise<void> {
    try {
      await this.#put(key, data);
    } catch (err) {
      // A directory removed behind our back (pruning, an operator): make it again, once.
      if (errCode(err) !== 'ENOENT') throw err;
      this.#madeDirs.clear();
      await this.#put(key, data);
    }
  }

  async #put(key: string, data: Buffer | Uint8Array | string): Promise<void> {
    const target = this.#path(key);
    const tmp = await this.#tmpPath();
    try {
      await writeFile(tmp, this.#keyring ? encryptBuffer(this.#keyring, key, Buffer.from(data as Uint8Array)) : data);
      await this.#ensureDir(path.dirname(target));
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
      let size: number;
      if (this.#keyring) {
        const { header, cipher } = encryptor(this.#keyring, key);
        let n = 0;
        await pipeline(
          body,
          async function* (source: AsyncIterable<Buffer | string>) {
            yield header;
            for await (const chunk of source) {
              const b = Buffer.from(chunk);
              n += b.length;
              const out = cipher.update(b);
              if (out.length) yield out;
            }
            const last = cipher.final();
            if (last.length) yield last;
            yield cipher.getAuthTag();
          },
          createWriteStream(tmp),
        );
        size = n;
      } else {
        await pipeline(body, createWriteStream(tmp));
        size = (await stat(tmp)).size;
      }
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
      return this.#plain(key, await readFile(this.#path(key)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new AppError('NOT_FOUND', `object '${key}' does not exist`);
      throw err;
    }
  }

  async getStream(key: string): Promise<Readable> {
    const p = this.#path(key);
    let size: number;
    try {
      const s = await stat(p);
      if (!s.isFile()) throw new AppError('NOT_FOUND', `object '${key}' does not exist`);
      size = s.size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new AppError('NOT_FOUND', `object '${key}' does not exist`);
      throw err;
    }
    if (size < OVERHEAD || !isEncrypted(await this.#head(p))) return createReadStream(p);
    if (!this.#keyring) throw new AppError('UNPROCESSABLE', `object '${key}' is encrypted at rest; set XRAY_OBJECT_KEY_FILE to read it`);
    if (size <= WHOLE_DECRYPT_MAX) return Readable.from([this.#plain(key, await readFile(p))]);
    // Large objects stream; a tampered one fails at its end (the tag is checked last).
    const header = await this.#head(p);
    const fh = await open(p, 'r');
    const tag = Buffer.alloc(TAG_LENGTH);
    try {
      await fh.read(tag, 0, TAG_LENGTH, size - TAG_LENGTH);
    } finally {
      await fh.close();
    }
    const decipher = decryptor(this.#keyring, header, tag, key);
    const source = createReadStream(p, { start: HEADER_LEN, end: size - TAG_LENGTH - 1 });
    source.on('error', (err) => decipher.destroy(err));
    return source.pipe(decipher);
  }

  /**
   * Key rotation and first encryption: every object not under the keyring's current master key is
   * rewritten atomically — plain ones encrypted, encrypted ones with their data key re-wrapped (the
   * ciphertext is copied as it is). Modification times are kept (garbage collection reads them).
   * Afterwards older master keys can leave XRAY_OBJECT_KEY_FILE.
   */
  async reencrypt(onProgress?: (done: number, result: ReencryptResult) => void): Promise<ReencryptResult> {
    const keyring = this.#keyring;
    if (!keyring) throw new AppError('INVALID_INPUT', 'set XRAY_OBJECT_KEY_FILE (the master key to encrypt with) first');
    const result: ReencryptResult = { encrypted: 0, rewrapped: 0, unchanged: 0 };
    let pageToken: string | undefined;
    let done = 0;
    do {
      const page = await this.list('', { pageSize: 1000, pageToken });
      for (const item of page.items) {
        const file = this.#path(item.key);
        const before = await stat(file);
        const head = await this.#head(file);
        const tmp = await this.#tmpPath();
        try {
          if (!isEncrypted(head) || before.size < OVERHEAD) {
            await writeFile(tmp, encryptBuffer(keyring, item.key, await readFile(file)));
            result.encrypted++;
          } else if (openHeader(keyring, head, item.key).kid === keyring.current.id) {
            result.unchanged++;
            continue;
          } else {
            await pipeline(
              async function* () {
                yield rewrapHeader(keyring, head, item.key);
                yield* createReadStream(file, { start: HEADER_LEN });
              },
              createWriteStream(tmp),
            );
            result.rewrapped++;
          }
          await utimes(tmp, before.atime, before.mtime);
          await rename(tmp, file);
        } finally {
          await rm(tmp, { force: true });
        }
        onProgress?.(++done, result);
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
    return result;
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const p = this.#path(key);
      const s = await stat(p);
      return s.isFile() ? { key, size: await this.#plainSize(p, s.size), modified: s.mtimeMs } : null;
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
          const file = path.join(dir, e.name);
          const s = await stat(file);
          all.push({ key: childRel, size: await this.#plainSize(file, s.size), modified: s.mtimeMs });
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

function errCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
