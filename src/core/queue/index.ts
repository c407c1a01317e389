import type { Database } from '../db/index.js';
import type { JobQueue } from './queue.js';
import { LocalQueue } from './local-queue.js';

export type * from './queue.js';
export { LocalQueue } from './local-queue.js';
export { PermanentJobError } from './queue.js';

/** Opens the job queue named by URL: `local:` (persisted in the relational store) or `redis://…` (BullMQ). */
export async function openQueue(url: string, database: Database, options: { prefix?: string } = {}): Promise<JobQueue> {
  if (url.startsWith('local:') || url.startsWith('memory:')) return new LocalQueue(database);
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { BullmqQueue } = await import('./bullmq-queue.js');
    return new BullmqQueue(url, options);
  }
  throw new Error(`unknown queue URL scheme in '${url}'; use local: or redis://host:6379/0`);
}
