import { EventEmitter } from 'node:events';
import type { EventBus, EventHandler } from './event-bus.js';

export class MemoryEventBus implements EventBus {
  readonly kind = 'memory' as const;
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  async publish(topic: string, payload: unknown): Promise<void> {
    // Deliver on the next tick, like a broker would: a publisher never runs subscriber code inline.
    const copy = JSON.parse(JSON.stringify(payload ?? null));
    setImmediate(() => this.#emitter.emit(topic, copy));
  }

  async subscribe(topic: string, handler: EventHandler): Promise<() => Promise<void>> {
    const safe = (payload: unknown) => {
      Promise.resolve()
        .then(() => handler(payload))
        .catch(() => {});
    };
    this.#emitter.on(topic, safe);
    return async () => {
      this.#emitter.off(topic, safe);
    };
  }

  async close(): Promise<void> {
    this.#emitter.removeAllListeners();
  }
}
