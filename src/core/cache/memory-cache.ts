import type { Cache } from './cache.js';

interface Entry {
  value: string | Buffer;
  expiresAt: number;
}

/** In-process LRU (Map insertion order) with TTL; the embedded default. */
export class MemoryCache implements Cache {
  readonly kind = 'memory' as const;
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;

  constructor(options: { maxEntries?: number } = {}) {
    this.#maxEntries = Math.max(1, options.maxEntries ?? 10000);
  }

  #read(key: string): Entry | null {
    const e = this.#entries.get(key);
    if (!e) return null;
    if (e.expiresAt && e.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return null;
    }
    this.#entries.delete(key);
    this.#entries.set(key, e);
    return e;
  }

  async get(key: string): Promise<string | null> {
    const e = this.#read(key);
    return e === null ? null : typeof e.value === 'string' ? e.value : e.value.toString('utf8');
  }

  async getBuffer(key: string): Promise<Buffer | null> {
    const e = this.#read(key);
    return e === null ? null : Buffer.isBuffer(e.value) ? e.value : Buffer.from(e.value, 'utf8');
  }

  async set(key: string, value: string | Buffer, ttlSeconds?: number): Promise<void> {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: ttlSeconds ? Date.now() + ttlSeconds * 1000 : 0 });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  async increment(key: string, ttlSeconds: number): Promise<number> {
    const e = this.#read(key);
    const n = (e ? Number(typeof e.value === 'string' ? e.value : e.value.toString('utf8')) || 0 : 0) + 1;
    this.#entries.set(key, { value: String(n), expiresAt: e ? e.expiresAt : Date.now() + ttlSeconds * 1000 });
    return n;
  }

  async delete(key: string): Promise<void> {
    this.#entries.delete(key);
  }

  async clear(): Promise<void> {
    this.#entries.clear();
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.#entries.clear();
  }
}
