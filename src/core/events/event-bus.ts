// eslint-disable-next-line @typescript-eslint/no-explicit-any -- topics carry different payloads; subscribers validate what they read
export type EventHandler = (payload: any) => void | Promise<void>;

/** Publish/subscribe between services: in-process in embedded mode, Redis pub/sub when scaled. */
export interface EventBus {
  readonly kind: 'memory' | 'redis';
  publish(topic: string, payload: unknown): Promise<void>;
  /** Returns an unsubscribe function. Handler errors are swallowed (logged by the caller's handler). */
  subscribe(topic: string, handler: EventHandler): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
