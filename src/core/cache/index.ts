import type { Cache } from './cache.js';
import { MemoryCache } from './memory-cache.js';

export type { Cache } from './cache.js';
export { MemoryCache } from './memory-cache.js';

/** Opens the cache named by URL: `memory:` or `redis://host:port/db`. */
export async function openCache(url: string, options: { maxEntries?: number; namespace?: string } = {}): Promise<Cache> {
  if (url === 'memory:' || url.startsWith('memory:')) return new MemoryCache(options);
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { RedisCache } = await import('./redis-cache.js');
    const { connectRedis } = await import('../redis.js');
    return new RedisCache(await connectRedis(url), { namespace: options.namespace });
  }
  throw new Error(`unknown cache URL scheme in '${url}'; use memory: or redis://host:6379/0`);
}
