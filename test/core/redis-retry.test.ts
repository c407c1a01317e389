import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redisRetryDelay } from '../../src/core/redis.js';

// A Redis outage longer than the retries (~31 s) used to leave the cache and event bus clients
// closed for good (found running the scaled suite's Redis outage by hand for 40 s).
test('Redis clients reconnect forever once connected, and give up only before the first connection', () => {
  assert.equal(redisRetryDelay(1, false), 200);
  assert.equal(redisRetryDelay(20, false), 2000);
  assert.equal(redisRetryDelay(21, false), null, 'an unreachable Redis at start is reported, not waited for forever');
  for (const times of [21, 100, 10_000]) assert.equal(redisRetryDelay(times, true), 2000, `attempt ${times} after a connection`);
});
