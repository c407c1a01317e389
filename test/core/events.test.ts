import { MemoryEventBus, openEventBus } from '../../src/core/events/index.js';
import { describeEventBusContract } from '../contract/events.contract.js';
import { engineGate, redisReachable, REDIS_URL, uniqueName } from '../helpers/engines.js';

describeEventBusContract('in-process (embedded)', async () => {
  const bus = new MemoryEventBus();
  return { value: bus, cleanup: () => bus.close() };
});

describeEventBusContract('Redis pub/sub (scale)', async () => {
  if (!(await engineGate('Redis', await redisReachable()))) return null;
  const bus = await openEventBus(REDIS_URL, { namespace: uniqueName('xray-test-events') });
  return { value: bus, cleanup: () => bus.close() };
});
