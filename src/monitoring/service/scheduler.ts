import type { Logger } from 'pino';
import type { ClusterSchedule } from '../../core/db/cluster-schedule.js';
import type { PredictionSource } from '../store/prediction-source.js';
import type { DriftService } from './drift-service.js';

/**
 * Runs a drift check of every model version with predictions since the previous run, every
 * `intervalMs` (timer unref'd, so it never keeps the process alive), followed by `afterEach`
 * (the traffic alert rules). A run that is still going when the next is due is skipped. With a
 * ClusterSchedule, replicas tick more often and only the one that claims the due run does it:
 * one check per interval across the cluster, each starting where the previous one ended.
 */
export interface SchedulerOptions {
  intervalMs: number;
  drift: DriftService;
  predictions: PredictionSource;
  afterRun?: () => Promise<unknown>;
  logger?: Logger;
  /** Once per cluster: replicas share the schedule through the database. */
  schedule?: ClusterSchedule;
}

export class DriftScheduler {
  readonly #o: SchedulerOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #lastRun: number;

  constructor(o: SchedulerOptions) {
    this.#o = o;
    this.#lastRun = Date.now() - o.intervalMs;
  }

  start(): void {
    if (this.#timer || this.#o.intervalMs <= 0) return;
    const every = this.#o.schedule ? Math.min(this.#o.intervalMs, 30_000) : this.#o.intervalMs;
    this.#timer = setInterval(() => void this.tick(), every);
    this.#timer.unref?.();
  }

  /** A scheduled tick: runs when due (and, with a ClusterSchedule, when this replica wins the claim). @returns whether it ran. */
  async tick(now = Date.now()): Promise<boolean> {
    if (this.#running) return false;
    if (!this.#o.schedule) {
      await this.runOnce({ now });
      return true;
    }
    let since: number | null;
    try {
      since = await this.#o.schedule.claim(now, this.#o.intervalMs, this.#lastRun);
    } catch (err) {
      this.#o.logger?.error({ err }, 'could not claim the scheduled monitoring pass');
      return false;
    }
    if (since === null) return false;
    await this.runOnce({ since, now });
    return true;
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
