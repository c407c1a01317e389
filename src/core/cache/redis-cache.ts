import type { Redis } from 'ioredis';
import type { Cache } from './cache.js';

/** Redis cache (scale path); every key is namespaced so clear() only touches ours. */
export class RedisCache implements Cache {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #ns: string;
  readonly #ownsClient: boolean;

  constructor(redis: Redis, options: { namespace?: string; ownsClient?: boolean } = {}) {
    this.#redis = redis;
    this.#ns = `${options.namespace ?? 'xray:cache'}:`;
    this.#ownsClient = options.ownsClient ?? true;
  }

  get redis(): Redis {
    return this.#redis;
  }

  async get(key: string): Promise<string | null> {
    return this.#redis.get(this.#ns + key);
  }

  async getBuffer(key: string): Promise<Buffer | null> {
    return this.#redis.getBuffer(this.#ns + key);
  }

  async set(key: string, value: string | Buffer, ttlSeconds?: number): Promise<void> {
    if (ttlSeconds) await this.#redis.set(this.#ns + key, value, 'EX', Math.max(1, Math.round(ttlSeconds)));
    else await this.#redis.set(this.#ns + key, value);
  }

  async increment(key: string, ttlSeconds: number): Promise<number> {
    const k = this.#ns + key;
    // Start the window only if the counter does not exist; INCR keeps the TTL it has.
    await this.#redis.set(k, '0', 'EX', Math.max(1, Math.round(ttlSeconds)), 'NX');
    return this.#redis.incr(k);
  }

  async delete(key: string): Promise<void> {
    await this.#redis.del(this.#ns + key);
  }

  async clear(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.#redis.scan(cursor, 'MATCH', `${this.#ns}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await this.#redis.del(...keys);
    } while (cursor !== '0');
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.#redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#ownsClient) this.#redis.disconnect();
  }
}
