import path from 'node:path';
import type { AuditLog } from '../audit/index.js';
import type { Config } from '../config/index.js';
import { objectStoreSettings, openObjectStore, type ObjectStore } from '../objects/index.js';
import { backupKey, createBackup, pruneBackups, type BackupSource, type Progress } from './backup.js';
import type { BackupManifest } from './manifest.js';

/**
 * Where backups go: `url` when given, else XRAY_BACKUP_TARGET, else beside the data
 * (`file:$XRAY_HOME/backups`, for a first try; production points it at another site).
 */
export function backupTargetUrl(config: Config, url?: string): string {
  return url || config.backup.target || `file:${path.join(config.home, 'backups')}`;
}

/** Opens a backup target with the platform's S3 credentials and encryption at rest. */
export function openBackupTarget(config: Config, url?: string): Promise<ObjectStore> {
  return openObjectStore(backupTargetUrl(config, url), objectStoreSettings(config));
}

export interface RetentionPolicy {
  daily: number;
  weekly: number;
}

export interface BackupRun {
  manifest: BackupManifest;
  /** The target's URL. */
  target: string;
  /** What retention removed; null when no policy was applied. */
  pruned: { removed: string[]; objectsRemoved: number; policy: RetentionPolicy } | null;
  durationMs: number;
}

/**
 * One backup as the CLI, the admin route and the schedule take it: createBackup to the target,
 * a `backup.create` audit record, then the retention policy (a `backup.prune` record when it
 * removed anything). A failure is audited as `backup.create` with outcome failure, then thrown.
 */
export async function runBackup(
  src: BackupSource & { audit: AuditLog },
  opts: { target?: string; actor: string; service: string; requestId?: string | null; keep?: RetentionPolicy | null; progress?: Progress; env?: NodeJS.ProcessEnv },
): Promise<BackupRun> {
  const where = backupTargetUrl(src.config, opts.target);
  const who = { actor: opts.actor, service: opts.service, requestId: opts.requestId ?? null };
  const started = performance.now();
  let target: ObjectStore | null = null;
  try {
    target = await openBackupTarget(src.config, where);
    const manifest = await createBackup(src, target, { key: backupKey(src.config, true, opts.env ?? process.env), progress: opts.progress });
    await src.audit.append({ ...who, action: 'backup.create', resource: `backup:${manifest.id}`, details: { target: where, objects: manifest.objects.length, copied: manifest.copied, database_bytes: manifest.database.bytes } });
    let pruned: BackupRun['pruned'] = null;
    if (opts.keep) {
      const r = await pruneBackups(target, opts.keep);
      pruned = { ...r, policy: opts.keep };
      if (r.removed.length) await src.audit.append({ ...who, action: 'backup.prune', resource: `backups:${where}`, details: { removed: r.removed, objects_removed: r.objectsRemoved, policy: opts.keep } });
    }
    return { manifest, target: where, pruned, durationMs: performance.now() - started };
  } catch (err) {
    await src.audit
      .append({ ...who, action: 'backup.create', resource: `backups:${where}`, outcome: 'failure', details: { target: where, error: err instanceof Error ? err.message : String(err) } })
      .catch(() => {});
    throw err;
  } finally {
    await target?.close();
  }
}
