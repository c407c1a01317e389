import type { EventBus } from './event-bus.js';
import { MemoryEventBus } from './memory-event-bus.js';

export type { EventBus, EventHandler } from './event-bus.js';
export { MemoryEventBus } from './memory-event-bus.js';

/** Well-known topics. */
export const TOPICS = {
  modelRegistered: 'model.registered',
  modelStageChanged: 'model.stage_changed',
  modelAliasChanged: 'model.alias_changed',
  modelDeleted: 'model.deleted',
  predictionRecorded: 'prediction.recorded',
  trainingFinished: 'training.finished',
  /** A deployment could not load the version an alias points to; the previous one (if any) keeps serving. */
  modelLoadFailed: 'deployment.model_load_failed',
  /** A deployment serves the version its alias points to again (after a failed load). */
  modelServing: 'deployment.model_serving',
} as const;

/** Opens the event bus named by URL: `memory:` or `redis://…`. */
export async function openEventBus(url: string, options: { namespace?: string } = {}): Promise<EventBus> {
  if (!url || url.startsWith('memory:')) return new MemoryEventBus();
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { RedisEventBus } = await import('./redis-event-bus.js');
    return RedisEventBus.connect(url, options);
  }
  throw new Error(`unknown event bus URL scheme in '${url}'; use memory: or redis://host:6379/0`);
}
