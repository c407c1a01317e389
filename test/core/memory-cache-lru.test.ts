import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryCache } from '../../src/core/cache/index.js';

test('the memory cache evicts the least recently used entry beyond its limit', async () => {
  const cache = new MemoryCache({ maxEntries: 2 });
  await cache.set('a', '1');
  await cache.set('b', '2');
  await cache.get('a');
  await cache.set('c', '3');
  assert.equal(await cache.get('b'), null);
  assert.equal(await cache.get('a'), '1');
  assert.equal(await cache.get('c'), '3');
});
