import path from 'node:path';
import { openDatabase } from '../../src/core/db/index.js';
import { dropPostgresSchema } from '../../src/core/db/postgres.js';
import { LocalQueue } from '../../src/core/queue/index.js';
import { BullmqQueue } from '../../src/core/queue/bullmq-queue.js';
import type { JobQueue } from '../../src/core/queue/index.js';
import { describeQueueContract } from '../contract/queue.contract.js';
import { engineGate, postgresReachable, redisReachable, POSTGRES_URL, REDIS_URL, tempHome, uniqueName } from '../helpers/engines.js';

describeQueueContract('local queue on SQLite (embedded)', async () => {
  const home = tempHome();
  const database = await openDatabase(`sqlite:${path.join(home.dir, 'q.db')}`);
  let queue: JobQueue = new LocalQueue(database);
  return {
    value: queue,
    async reopen() {
      await queue.close();
      queue = new LocalQueue(database);
      return queue;
    },
    cleanup: async () => (await queue.close(), await database.close(), home.cleanup()),
  };
});

describeQueueContract('local queue on PostgreSQL', async () => {
  if (!(await engineGate('PostgreSQL', await postgresReachable()))) return null;
  const schema = uniqueName('q');
  const database = await openDatabase(POSTGRES_URL, { schema });
  let queue: JobQueue = new LocalQueue(database);
  return {
    value: queue,
    async reopen() {
      await queue.close();
      queue = new LocalQueue(database);
      return queue;
    },
    cleanup: async () => (await queue.close(), await database.close(), await dropPostgresSchema(POSTGRES_URL, schema)),
  };
});

describeQueueContract('BullMQ on Redis (scale)', async () => {
  if (!(await engineGate('Redis', await redisReachable()))) return null;
  const prefix = uniqueName('xraytest');
  let queue = new BullmqQueue(REDIS_URL, { prefix });
  const used = ['double', 'flaky', 'conc', 'idem', 'later', 'backoff', 'permanent'];
  return {
    value: queue,
    async reopen() {
      await queue.close();
      queue = new BullmqQueue(REDIS_URL, { prefix });
      return queue;
    },
    cleanup: async () => {
      for (const q of used) await queue.obliterate(q).catch(() => {});
      await queue.close();
    },
  };
});
