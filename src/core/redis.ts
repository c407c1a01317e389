import type { Redis, RedisOptions } from 'ioredis';

/**
 * Connects an ioredis client and waits until it is ready, failing fast (no endless retry loop
 * at start) so an unreachable Redis is reported instead of hanging.
 */
export async function connectRedis(url: string, options: RedisOptions = {}): Promise<Redis> {
  const { Redis: RedisCtor } = await import('ioredis');
  const client = new RedisCtor(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 3,
    retryStrategy: (times) => (times > 20 ? null : Math.min(times * 200, 2000)),
    ...options,
  });
  client.on('error', () => {
    /* reported through failed commands and ping(); never an unhandled 'error' event */
  });
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new Error(`cannot connect to Redis at ${url}: ${(err as Error).message}`);
  }
  return client;
}
