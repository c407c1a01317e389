import type { Logger } from 'pino';
import type { Platform } from '../../core/platform.js';
import type { TrainerHandle, TrainerRunner } from '../runner/index.js';
import type { TrainingStore } from '../store/training-store.js';
import type { DatasetSource } from './datasets.js';
import type { LiveNotifier } from './live.js';
import type { TrainingMetrics } from './metrics.js';
import type { ModelRegistrar } from './registration.js';
import type { SafeTracker } from './tracking.js';

export const SERVICE_NAME = 'training';
/** The platform queue training jobs and studies go through. */
export const QUEUE_NAME = 'training';
/** Event bus topic asking whichever replica runs a job or study to stop it. */
export const CANCEL_TOPIC = 'training.cancel';
/** A running job refreshes its heartbeat this often… */
export const HEARTBEAT_MS = 10_000;
/** …and is considered orphaned (interrupted) when the heartbeat is older than this. */
export const STALE_AFTER_MS = 60_000;

export type StopReason = 'cancel' | 'shutdown';

/** A job or study attempt running in this process. */
export interface ActiveAttempt {
  readonly kind: 'job' | 'study';
  handle: TrainerHandle | null;
  /** Why we asked the worker to stop: decides `cancelled` vs `interrupted`. */
  stopReason: StopReason | null;
  /** Settles when the attempt has recorded its final state. */
  done: Promise<void>;
}

/** What job and study attempts share: the platform, stores, the runner and the hooks around them. */
export interface TrainingContext {
  readonly platform: Platform;
  readonly store: TrainingStore;
  readonly runner: TrainerRunner;
  readonly tracker: SafeTracker;
  readonly datasets: DatasetSource;
  readonly registrar: () => Promise<ModelRegistrar>;
  readonly metrics: TrainingMetrics | null;
  readonly live: LiveNotifier;
  readonly logger: Logger;
  /** This machine's name (recorded with each running job; recovery checks its own pids). */
  readonly host: string;
  /** Worker threads per job. */
  readonly threads: number;
  readonly active: Map<string, ActiveAttempt>;
  /** Git commit of the code (tracking tag), or 'unknown'. */
  gitCommit(): Promise<string>;
  /** Appends a service or worker event to the owner's log and wakes its live listeners. */
  record(ownerId: string, attempt: number, event: string, data: Record<string, unknown>): Promise<void>;
}

/** Asks an active attempt to stop (no-op when this process does not run it). */
export function stopActive(ctx: TrainingContext, id: string, reason: StopReason): boolean {
  const active = ctx.active.get(id);
  if (!active) return false;
  active.stopReason ??= reason; // a user's cancel stays a cancel even if shutdown follows
  active.handle?.cancel();
  return true;
}
