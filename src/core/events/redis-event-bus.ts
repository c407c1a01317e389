import type { Redis } from 'ioredis';
import type { EventBus, EventHandler } from './event-bus.js';
import { connectRedis } from '../redis.js';

/** Redis pub/sub: one publisher connection, one subscriber connection (created on first subscribe). */
export class RedisEventBus implements EventBus {
  readonly kind = 'redis' as const;
  readonly #url: string;
  readonly #ns: string;
  readonly #pub: Redis;
  #sub?: Promise<Redis>;
  readonly #handlers = new Map<string, Set<EventHandler>>();

  private constructor(url: string, pub: Redis, namespace: string) {
    this.#url = url;
    this.#pub = pub;
    this.#ns = namespace;
  }

  static async connect(url: string, options: { namespace?: string } = {}): Promise<RedisEventBus> {
    return new RedisEventBus(url, await connectRedis(url), `${options.namespace ?? 'xray:events'}:`);
  }

  async publish(topic: string, payload: unknown): Promise<void> {
    await this.#pub.publish(this.#ns + topic, JSON.stringify(payload ?? null));
  }

  #subscriber(): Promise<Redis> {
    this.#sub ??= connectRedis(this.#url).then((sub) => {
      sub.on('message', (channel: string, message: string) => {
        const handlers = this.#handlers.get(channel.slice(this.#ns.length));
        if (!handlers) return;
        let payload: unknown;
        try {
          payload = JSON.parse(message);
        } catch {
          return;
        }
        for (const h of handlers) Promise.resolve().then(() => h(payload)).catch(() => {});
      });
      return sub;
    });
    return this.#sub;
  }

  async subscribe(topic: string, handler: EventHandler): Promise<() => Promise<void>> {
    const sub = await this.#subscriber();
    let set = this.#handlers.get(topic);
    if (!set) {
      set = new Set();
      this.#handlers.set(topic, set);
      await sub.subscribe(this.#ns + topic);
    }
    set.add(handler);
    return async () => {
      set!.delete(handler);
      if (set!.size === 0) {
        this.#handlers.delete(topic);
        await sub.unsubscribe(this.#ns + topic);
      }
    };
  }

  async close(): Promise<void> {
    this.#pub.disconnect();
    if (this.#sub) (await this.#sub).disconnect();
  }
}
