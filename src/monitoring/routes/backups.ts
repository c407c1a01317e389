import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import type { BackupManifest } from '../../core/backup/index.js';
import { errorResponses } from '../../core/http/index.js';
import type { BackupJob, BackupService } from '../service/backup-service.js';
import { backupJobSchema, backupListSchema, backupSummarySchema, idParams } from './schemas.js';

const TAGS = ['backups'];

function toSummary(m: BackupManifest): z.infer<typeof backupSummarySchema> {
  return {
    id: m.id,
    created_at: m.created_at,
    engine: m.engine,
    platform_version: m.platform_version,
    schema_version: m.schema_version,
    database_bytes: m.database.bytes,
    objects: m.objects.length,
    object_bytes: m.objects.reduce((a, o) => a + o.bytes, 0),
    copied: m.copied,
    rows: Object.values(m.tables).reduce((a, n) => a + n, 0),
  };
}

function toJobView(j: BackupJob): z.infer<typeof backupJobSchema> {
  return {
    id: j.id,
    trigger: j.trigger,
    actor: j.actor,
    target: j.target,
    status: j.status,
    started_at: j.startedAt,
    finished_at: j.finishedAt,
    backup: j.manifest ? toSummary(j.manifest) : null,
    pruned: j.pruned ? { removed: j.pruned.removed, objects_removed: j.pruned.objectsRemoved } : null,
    error: j.error,
  };
}

/** Backups for admins: take one now, follow it, list the target's backups. */
export function backupRoutes(app: FastifyInstance, backups: BackupService): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post(
    '/backups',
    {
      config: { role: 'admin' },
      schema: {
        tags: TAGS,
        summary: 'Take a backup now',
        description:
          'An online, consistent backup (database snapshot by the engine\'s own tool, objects copied content-addressed and incrementally, a signed manifest) to XRAY_BACKUP_TARGET, ' +
          'else file:$XRAY_HOME/backups; retention XRAY_BACKUP_KEEP_* applies after it. Answers 202 with the running job at once: follow it with GET /backups/jobs/{id}. ' +
          '409 while another backup of this replica runs. Audited as backup.create.',
        response: { 202: backupJobSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const job = backups.startNow(req.principal.name, req.id);
      return reply.code(202).send(toJobView(job));
    },
  );

  r.get(
    '/backups/jobs/:id',
    {
      config: { role: 'admin' },
      schema: {
        tags: TAGS,
        summary: 'A backup job of this replica',
        description: 'running, then succeeded (with the backup taken) or failed (with the error). Jobs are kept in memory by the replica that ran them.',
        params: idParams,
        response: { 200: backupJobSchema, ...errorResponses },
      },
    },
    async (req) => toJobView(backups.job(req.params.id)),
  );

  r.get(
    '/backups',
    {
      config: { role: 'admin' },
      schema: {
        tags: TAGS,
        summary: "The backup target's backups, newest first",
        description: 'Read from the signed manifests in the target (so backups taken by the CLI or another replica are listed too), and the schedule.',
        response: { 200: backupListSchema, ...errorResponses },
      },
    },
    async () => {
      const s = backups.scheduled;
      return {
        target: backups.target,
        schedule: s ? { interval_h: s.intervalMs / 3_600_000, keep_daily: s.keep?.daily ?? 0, keep_weekly: s.keep?.weekly ?? 0 } : null,
        items: (await backups.list()).map(toSummary),
      };
    },
  );
}
