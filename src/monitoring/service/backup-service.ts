import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { backupTargetUrl, listBackups, openBackupTarget, runBackup, type BackupManifest, type BackupRun, type RetentionPolicy } from '../../core/backup/index.js';
import type { ClusterSchedule } from '../../core/db/cluster-schedule.js';
import { AppError, isAppError } from '../../core/errors.js';
import type { Platform } from '../../core/platform.js';

/** One backup taken by this replica: started by an admin (POST /backups) or by the schedule. */
export interface BackupJob {
  id: string;
  trigger: 'api' | 'schedule';
  actor: string;
  target: string;
  status: 'running' | 'succeeded' | 'failed';
  startedAt: number;
  finishedAt: number | null;
  manifest: BackupManifest | null;
  pruned: BackupRun['pruned'];
  error: { code: string; message: string } | null;
}

export interface BackupServiceOptions {
  platform: Platform;
  logger?: Logger;
  /** Scheduled backups go here; '' = none scheduled (admins still back up to the default target). */
  scheduledTarget: string;
  /** 0 = no schedule. */
  intervalMs: number;
  /** Retention after each backup; null = keep every backup. */
  keep: RetentionPolicy | null;
  /** Once per cluster: replicas share the schedule through the database. */
  schedule?: ClusterSchedule;
  /** How often replicas try to claim the due backup (default: min(interval, 60 s)). */
  tickMs?: number;
}

const KEPT_JOBS = 50;

/**
 * Backups from the monitoring service (it owns the audit trail): on demand for admins and every
 * XRAY_BACKUP_INTERVAL_H hours to XRAY_BACKUP_TARGET, once per cluster — every replica ticks, and
 * only the one that claims the due run in the database takes it. One backup at a time per
 * replica; jobs are remembered in memory (the backups themselves are listed from the target).
 */
export class BackupService {
  readonly #o: BackupServiceOptions;
  readonly #jobs = new Map<string, BackupJob>();
  #running: { job: BackupJob; done: Promise<void> } | null = null;
  #timer: NodeJS.Timeout | null = null;
  #lastRun = Date.now();
  #stopped = false;

  constructor(o: BackupServiceOptions) {
    this.#o = o;
  }

  /** The target POST /backups and GET /backups use. */
  get target(): string {
    return backupTargetUrl(this.#o.platform.config, this.#o.scheduledTarget || undefined);
  }

  /** Whether backups are scheduled, where to and how often. */
  get scheduled(): { target: string; intervalMs: number; keep: RetentionPolicy | null } | null {
    return this.#o.scheduledTarget && this.#o.intervalMs > 0 ? { target: this.#o.scheduledTarget, intervalMs: this.#o.intervalMs, keep: this.#o.keep } : null;
  }

  start(): void {
    if (this.#timer || !this.scheduled) return;
    const every = this.#o.tickMs ?? Math.min(this.#o.intervalMs, 60_000);
    this.#timer = setInterval(() => void this.tick(), every);
    this.#timer.unref?.();
  }

  /**
   * A scheduled tick: takes the backup when the interval has passed (with a ClusterSchedule: when
   * this replica claims it). @returns the job it started and waited for, or null.
   */
  async tick(now = Date.now()): Promise<BackupJob | null> {
    const s = this.scheduled;
    if (!s || this.#running || this.#stopped) return null;
    if (this.#o.schedule) {
      let claimed: number | null;
      try {
        claimed = await this.#o.schedule.claim(now, s.intervalMs, now - s.intervalMs);
      } catch (err) {
        this.#o.logger?.error({ err }, 'could not claim the scheduled backup');
        return null;
      }
      if (claimed === null) return null;
    } else if (now - this.#lastRun < s.intervalMs) {
      return null;
    }
    this.#lastRun = now;
    const job = this.#begin('schedule', 'monitoring', null, s.target);
    await this.settle();
    return job;
  }

  /**
   * Starts a backup now (POST /backups); returns at once with the running job.
   * @throws AppError CONFLICT while another backup of this replica runs.
   */
  startNow(actor: string, requestId: string | null): BackupJob {
    if (this.#running) throw new AppError('CONFLICT', `backup job ${this.#running.job.id} is still running; wait for it (GET /backups/jobs/${this.#running.job.id})`);
    return this.#begin('api', actor, requestId, this.target);
  }

  job(id: string): BackupJob {
    const job = this.#jobs.get(id);
    if (!job) throw new AppError('NOT_FOUND', `no backup job ${id} on this replica (jobs are kept in memory, the last ${KEPT_JOBS})`);
    return job;
  }

  /** Waits for the running job, if any (tests, shutdown). */
  async settle(): Promise<void> {
    await this.#running?.done;
  }

  /** The target's backups, newest first. */
  async list(): Promise<BackupManifest[]> {
    const target = await openBackupTarget(this.#o.platform.config, this.target);
    try {
      return await listBackups(target);
    } finally {
      await target.close();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.done;
  }

  #begin(trigger: BackupJob['trigger'], actor: string, requestId: string | null, target: string): BackupJob {
    const job: BackupJob = { id: randomUUID(), trigger, actor, target, status: 'running', startedAt: Date.now(), finishedAt: null, manifest: null, pruned: null, error: null };
    this.#jobs.set(job.id, job);
    for (const old of this.#jobs.keys()) {
      if (this.#jobs.size <= KEPT_JOBS) break;
      if (old !== job.id) this.#jobs.delete(old);
    }
    const { platform } = this.#o;
    const done = (async () => {
      try {
        const run = await runBackup(
          { config: platform.config, database: platform.database, objects: platform.objects, audit: platform.audit },
          { target, actor, service: 'monitoring', requestId, keep: this.#o.keep },
        );
        job.manifest = run.manifest;
        job.pruned = run.pruned;
        job.status = 'succeeded';
        this.#o.logger?.info({ backup: run.manifest.id, trigger, target, ms: Math.round(run.durationMs) }, 'backup taken');
      } catch (err) {
        job.status = 'failed';
        job.error = isAppError(err) ? { code: err.code, message: err.message } : { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
        this.#o.logger?.error({ err, trigger, target }, 'backup failed');
      } finally {
        job.finishedAt = Date.now();
        this.#running = null;
      }
    })();
    this.#running = { job, done };
    return job;
  }
}
