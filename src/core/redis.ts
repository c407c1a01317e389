import type { Redis, RedisOptions } from 'ioredis';

/**
 * Delay before reconnect attempt `times` (ms), or null to give up: 200 ms more per attempt up to
 * 2 s; before the first connection succeeded it gives up after 20 attempts, after it never does.
 */
export function redisRetryDelay(times: number, connected: boolean): number | null {
  if (!connected && times > 20) return null;
  return Math.min(times * 200, 2000);
}

/**
 * Connects an ioredis client and waits until it is ready, failing fast (no endless retry loop
 * at start) so an unreachable Redis is reported instead of hanging. Once connected it reconnects
 * for as long as it takes (every 2 s at most): a Redis restarted after a long outage is picked up
 * again — giving up after some tries left the cache and the event bus closed for good.
 */
export async function connectRedis(url: string, options: RedisOptions = {}): Promise<Redis> {
  const { Redis: RedisCtor } = await import('ioredis');
  let connected = false;
  const client = new RedisCtor(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 3,
    retryStrategy: (times) => redisRetryDelay(times, connected),
    ...options,
  });
  client.on('error', () => {
    /* reported through failed commands and ping(); never an unhandled 'error' event */
  });
  try {
    await client.connect();
    connected = true;
    // While Redis is away, commands fail at once instead of queueing until it is back: a cache
    // lookup is a miss and a published event is dropped now, not after seconds of waiting (each
    // prediction used to stall ~2 s on its cache lookup during an outage).
    client.options.enableOfflineQueue = false;
  } catch (err) {
    client.disconnect();
    throw new Error(`cannot connect to Redis at ${url}: ${(err as Error).message}`);
  }
  return client;
}
