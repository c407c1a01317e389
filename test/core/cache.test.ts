import { MemoryCache, openCache } from '../../src/core/cache/index.js';
import { describeCacheContract } from '../contract/cache.contract.js';
import { engineGate, redisReachable, REDIS_URL, uniqueName } from '../helpers/engines.js';

describeCacheContract('memory LRU (embedded)', async () => {
  const cache = new MemoryCache({ maxEntries: 100 });
  return { value: cache, cleanup: () => cache.close() };
});

describeCacheContract('Redis (scale)', async () => {
  if (!(await engineGate('Redis', await redisReachable()))) return null;
  const cache = await openCache(REDIS_URL, { namespace: uniqueName('xray-test-cache') });
  return { value: cache, cleanup: async () => (await cache.clear(), await cache.close()) };
});
