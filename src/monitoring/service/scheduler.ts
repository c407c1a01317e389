import type { Logger } from 'pino';
import type { PredictionSource } from '../store/prediction-source.js';
import type { DriftService } from './drift-service.js';

/**
 * Runs a drift check of every model version with predictions since the previous run, every
 * `intervalMs` (timer unref'd, so it never keeps the process alive), followed by `afterEach`
 * (the traffic alert rules). A run that is still going when the next is due is skipped.
 */
export class DriftScheduler {
  readonly #o: { intervalMs: number; drift: DriftService; predictions: PredictionSource; afterRun?: () => Promise<unknown>; logger?: Logger };
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #lastRun: number;

  constructor(o: { intervalMs: number; drift: DriftService; predictions: PredictionSource; afterRun?: () => Promise<unknown>; logger?: Logger }) {
    this.#o = o;
    this.#lastRun = Date.now() - o.intervalMs;
  }

  start(): void {
    if (this.#timer || this.#o.intervalMs <= 0) return;
    this.#timer = setInterval(() => void this.runOnce(), this.#o.intervalMs);
    this.#timer.unref?.();
  }

  /** One scheduled pass over [since (default: the previous pass), now]; also callable directly. */
  runOnce(window: { since?: number; now?: number } = {}): Promise<void> {
    if (this.#running) return this.#running;
    const now = window.now ?? Date.now();
    const since = window.since ?? this.#lastRun;
    this.#running = (async () => {
      try {
        const versions = await this.#o.predictions.activeVersions(since);
        for (const { model, version } of versions) {
          try {
            await this.#o.drift.detect({ model, version, window: { since, until: now }, trigger: 'schedule', actor: 'monitoring', keepInsufficient: false });
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (code !== 'UNPROCESSABLE') this.#o.logger?.error({ err, model, version }, 'scheduled drift check failed');
          }
        }
        await this.#o.afterRun?.();
        this.#lastRun = now;
      } catch (err) {
        this.#o.logger?.error({ err }, 'scheduled monitoring pass failed');
      } finally {
        this.#running = null;
      }
    })();
    return this.#running;
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
