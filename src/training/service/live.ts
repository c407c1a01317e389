import { EventEmitter } from 'node:events';

/**
 * Wakes listeners (SSE streams, long polls) of one job or study when something new was stored
 * for it in this process. Listeners also poll the store, so a job run by another replica is
 * followed too, only less promptly.
 */
export class LiveNotifier {
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  notify(ownerId: string): void {
    this.#emitter.emit(ownerId);
  }

  /** Resolves on the next notification for `ownerId`, after `timeoutMs`, or when `signal` aborts. */
  wait(ownerId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#emitter.off(ownerId, done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref?.();
      this.#emitter.on(ownerId, done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
