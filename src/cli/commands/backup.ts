import type { Command } from 'commander';
import { AuditLog } from '../../core/audit/index.js';
import { backupKey, backupTargetUrl, listBackups, openBackupTarget, restoreBackup, runBackup, verifyBackup, type Progress, type RetentionPolicy } from '../../core/backup/index.js';
import { loadConfig, type Config } from '../../core/config/index.js';
import { openDatabase } from '../../core/db/index.js';
import { objectStoreSettings, openObjectStore, type ObjectStore } from '../../core/objects/index.js';

/** Where backups go by default: XRAY_BACKUP_TARGET, else beside the data (production points --to or XRAY_BACKUP_TARGET at another site). */
export function defaultBackupTarget(config: Config): string {
  return backupTargetUrl(config);
}

function openTarget(config: Config, url: string | undefined): Promise<ObjectStore> {
  return openBackupTarget(config, url);
}

/** A one-line progress bar on stderr (a TTY), else nothing. */
function progressBar(write: (s: string) => void = (s) => process.stderr.write(s)): Progress {
  let last = '';
  return (phase, done, total) => {
    if (!process.stderr.isTTY) return;
    const width = 30;
    const filled = total ? Math.round((done / total) * width) : width;
    const line = `\r${phase.padEnd(9)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
    if (line !== last) write(line + (done === total ? '\n' : ''));
    last = line;
  };
}

export interface BackupCommandIo {
  env?: NodeJS.ProcessEnv;
  out?: (line: string) => void;
}

/** `xray backup create`: returns the exit code. */
export async function backupCreate(opts: { to?: string; keepDaily?: string; keepWeekly?: string }, io: BackupCommandIo = {}): Promise<number> {
  const config = loadConfig(io.env ?? process.env);
  const out = io.out ?? console.log;
  let keep: RetentionPolicy | null = null;
  if (opts.keepDaily !== undefined || opts.keepWeekly !== undefined) {
    keep = { daily: Number(opts.keepDaily ?? 0), weekly: Number(opts.keepWeekly ?? 0) };
    if (!Number.isInteger(keep.daily) || !Number.isInteger(keep.weekly) || keep.daily < 0 || keep.weekly < 0) throw new Error('--keep-daily and --keep-weekly take whole numbers');
  }
  const database = await openDatabase(config.databaseUrl);
  const objects = await openObjectStore(config.objectStoreUrl, objectStoreSettings(config));
  try {
    const run = await runBackup({ config, database, objects, audit: new AuditLog(database) }, { target: opts.to, actor: 'cli', service: 'cli', keep, progress: progressBar(), env: io.env ?? process.env });
    const m = run.manifest;
    const bytes = m.database.bytes + m.objects.reduce((a, o) => a + o.bytes, 0);
    out(`backup ${m.id}: database ${(m.database.bytes / 1e6).toFixed(1)} MB, ${m.objects.length} objects (${m.copied} copied, the rest already there), ${(bytes / 1e6).toFixed(1)} MB in all, ${(run.durationMs / 1000).toFixed(1)} s → ${run.target}`);
    if (run.pruned) out(`retention (newest of ${run.pruned.policy.daily} days, ${run.pruned.policy.weekly} weeks): removed ${run.pruned.removed.length} backups and ${run.pruned.objectsRemoved} objects no kept backup lists`);
    return 0;
  } finally {
    await Promise.all([database.close(), objects.close()]);
  }
}

/** `xray backup verify`: 0 when every check passes, 1 otherwise. */
export async function backupVerify(id: string, opts: { from?: string }, io: BackupCommandIo = {}): Promise<number> {
  const config = loadConfig(io.env ?? process.env);
  const out = io.out ?? console.log;
  const target = await openTarget(config, opts.from);
  try {
    // The prediction check runs models (ONNX Runtime): loaded when verify runs, never by `xray serve`.
    const { reproduceStoredPrediction } = await import('./backup-reproduce.js');
    const report = await verifyBackup(target, id, { key: backupKey(config, false, io.env ?? process.env), postgresUrl: config.databaseUrl.startsWith('postgres') ? config.databaseUrl : undefined, progress: progressBar(), reproduce: reproduceStoredPrediction });
    for (const c of report.checks) out(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.message}`);
    out(report.ok ? `backup ${report.id} verified` : `backup ${report.id} FAILED verification`);
    return report.ok ? 0 : 1;
  } finally {
    await target.close();
  }
}

/** `xray backup restore`: into this configuration's (empty) database and object store. */
export async function backupRestore(id: string, opts: { from?: string; force?: boolean }, io: BackupCommandIo = {}): Promise<number> {
  const config = loadConfig(io.env ?? process.env);
  const out = io.out ?? console.log;
  const objects = await openObjectStore(config.objectStoreUrl, objectStoreSettings(config));
  const target = await openTarget(config, opts.from);
  try {
    const m = await restoreBackup(target, id, { config, objects }, { key: backupKey(config, false, io.env ?? process.env), force: opts.force, progress: progressBar() });
    const database = await openDatabase(config.databaseUrl);
    try {
      await new AuditLog(database).append({ actor: 'cli', action: 'backup.restore', resource: `backup:${m.id}`, service: 'cli', details: { from: opts.from ?? defaultBackupTarget(config), forced: Boolean(opts.force) } });
    } finally {
      await database.close();
    }
    out(`restored backup ${m.id} (${m.created_at}): ${Object.values(m.tables).reduce((a, n) => a + n, 0)} rows, ${m.objects.length} objects`);
    return 0;
  } finally {
    await Promise.all([objects.close(), target.close()]);
  }
}

export function registerBackup(program: Command): void {
  const backup = program.command('backup').description('backups of the database and the object store: create, list, verify, restore');
  const fail = (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  };
  backup
    .command('create')
    .description('an online, consistent backup (database snapshot + objects, incremental) with a signed manifest')
    .option('--to <url>', 'backup target: file:<dir> or s3://bucket/prefix (default file:$XRAY_HOME/backups)')
    .option('--keep-daily <n>', 'after the backup, keep the newest backup of each of the last n days…')
    .option('--keep-weekly <n>', '…and of the last n ISO weeks; delete the others (and objects only they listed)')
    .action((o: { to?: string; keepDaily?: string; keepWeekly?: string }) => backupCreate(o).then((c) => void (process.exitCode = c), fail));
  backup
    .command('list')
    .option('--from <url>', 'backup target')
    .action(async (o: { from?: string }) => {
      const config = loadConfig();
      const target = await openTarget(config, o.from);
      try {
        for (const m of await listBackups(target)) console.log(`${m.id}  ${m.created_at}  ${m.engine}  ${m.objects.length} objects  schema ${m.schema_version ?? '?'}`);
      } finally {
        await target.close();
      }
    });
  backup
    .command('verify')
    .description('restore into a scratch database and check signature, every hash, row counts, the audit chain and that the newest stored prediction reproduces from the restored model and image; exit 1 on any mismatch')
    .argument('[id]', "backup id, or 'latest'", 'latest')
    .option('--from <url>', 'backup target')
    .action((id: string, o: { from?: string }) => backupVerify(id, o).then((c) => void (process.exitCode = c), fail));
  backup
    .command('restore')
    .description('restore into this configuration\'s empty database and object store (stop the platform first)')
    .argument('[id]', "backup id, or 'latest'", 'latest')
    .option('--from <url>', 'backup target')
    .option('--force', 'restore over a database or object store that is not empty')
    .action((id: string, o: { from?: string; force?: boolean }) => backupRestore(id, o).then((c) => void (process.exitCode = c), fail));
}
