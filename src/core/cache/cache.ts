import type { Redis } from 'ioredis';

/** A byte/string cache with optional TTL: prediction results, model metadata. */
export interface Cache {
  readonly kind: 'memory' | 'redis';
  /** The Redis connection behind a Redis cache, shared with what counts there too (rate limits). */
  readonly redis?: Redis;
  get(key: string): Promise<string | null>;
  getBuffer(key: string): Promise<Buffer | null>;
  set(key: string, value: string | Buffer, ttlSeconds?: number): Promise<void>;
  /**
   * Adds one to a counter and returns the new value; the first increment starts its TTL (a fixed
   * window), later ones keep it. Atomic across replicas on Redis.
   */
  increment(key: string, ttlSeconds: number): Promise<number>;
  delete(key: string): Promise<void>;
  /** Removes every key under this cache's namespace. */
  clear(): Promise<void>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
