import { readFile, stat } from 'node:fs/promises';
import { AppError } from '../../core/errors.js';
import type { JobState } from '../../core/queue/index.js';
import type { Label } from '../store/types.js';
import { SERVICE_NAME, type DataContext } from './context.js';
import { planImport, resolveImportDir } from './import-files.js';
import { ingestFile } from './ingest.js';

export const IMPORT_QUEUE = 'data-import';
/** Files read, decoded and stored at once: bounds memory (a few files in RAM) and CPU share. */
export const IMPORT_CONCURRENCY = 3;
/** Rejections listed in the progress (counts are always complete). */
const MAX_LISTED_REJECTIONS = 500;
const PROGRESS_INTERVAL_MS = 250;

export interface ImportRequest {
  /** Server-side folder, absolute or relative to the import root. */
  path: string;
  /** Force this label on every file. */
  label?: Label;
  /** Record `train/`, `val/`, `test/` folder names as the images' split. */
  splitFromFolders?: boolean;
}

export interface ImportJobData {
  dir: string;
  requested: string;
  label?: Label;
  splitFromFolders: boolean;
  actor: string;
  requestId?: string;
}

export interface ImportRejection {
  file: string;
  code: string;
  message: string;
}

export interface ImportProgress {
  total: number;
  done: number;
  ingested: number;
  duplicates: number;
  rejected: number;
  /** Duplicates whose label differs from the stored one. */
  label_conflicts: number;
  rejections: ImportRejection[];
}

export interface ImportStatus extends ImportProgress {
  job_id: string;
  state: JobState;
  path: string;
  error: string | null;
  created_at: number;
  updated_at: number;
}

function emptyProgress(): ImportProgress {
  return { total: 0, done: 0, ingested: 0, duplicates: 0, rejected: 0, label_conflicts: 0, rejections: [] };
}

/**
 * Imports a resolved folder: lists the files (paths only), then ingests them with
 * {@link IMPORT_CONCURRENCY} in flight, reporting progress at most every 250 ms and at the end.
 * Usable without the queue (benchmarks, tests); the queue handler calls it.
 */
export async function runImport(
  ctx: DataContext,
  data: ImportJobData,
  onProgress: (p: ImportProgress) => Promise<void> | void = () => {},
): Promise<ImportProgress> {
  const progress = emptyProgress();
  const reject = (r: ImportRejection) => {
    progress.rejected++;
    if (progress.rejections.length < MAX_LISTED_REJECTIONS) progress.rejections.push(r);
  };
  const plan = await planImport(data.dir, { root: ctx.platform.config.importRoot, label: data.label, splitFromFolders: data.splitFromFolders });
  progress.total = plan.files.length + plan.rejected.length;
  for (const r of plan.rejected) {
    reject(r);
    progress.done++;
  }
  await onProgress(progress);

  let last = Date.now();
  let reporting: Promise<void> = Promise.resolve();
  const report = (force: boolean) => {
    const now = Date.now();
    if (!force && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    const snapshot = { ...progress, rejections: [...progress.rejections] };
    reporting = reporting.then(() => onProgress(snapshot)).catch(() => {});
  };

  const maxBytes = ctx.platform.config.maxUploadBytes;
  let next = 0;
  const worker = async () => {
    while (next < plan.files.length) {
      const file = plan.files[next++]!;
      try {
        const { size } = await stat(file.path);
        if (size > maxBytes) {
          reject({ file: file.relative, code: 'PAYLOAD_TOO_LARGE', message: `file is ${size} bytes, above the ${maxBytes}-byte limit` });
        } else {
          const result = await ingestFile(ctx, {
            bytes: await readFile(file.path),
            fileName: file.relative,
            label: file.label,
            split: file.split,
            actor: data.actor,
          });
          if (result.status === 'ingested') progress.ingested++;
          else if (result.status === 'duplicate') {
            progress.duplicates++;
            if (result.label_conflict_with) progress.label_conflicts++;
          } else reject({ file: file.relative, code: result.error!.code, message: result.error!.message });
        }
      } catch (err) {
        reject({ file: file.relative, code: 'INVALID_INPUT', message: `cannot read file: ${(err as Error).message}` });
      }
      progress.done++;
      report(false);
    }
  };
  await Promise.all(Array.from({ length: IMPORT_CONCURRENCY }, worker));
  report(true);
  await reporting;
  return progress;
}

/**
 * Validates the folder (inside the import root, exists) and queues a durable import job.
 * @throws AppError INVALID_INPUT / NOT_FOUND for a bad path (nothing is queued).
 */
export async function startImport(ctx: DataContext, request: ImportRequest, actor: string, requestId?: string): Promise<string> {
  const dir = await resolveImportDir(ctx.platform.config.importRoot, request.path);
  const data: ImportJobData = {
    dir,
    requested: request.path,
    splitFromFolders: request.splitFromFolders ?? false,
    actor,
    ...(request.label ? { label: request.label } : {}),
    ...(requestId ? { requestId } : {}),
  };
  ensureImportWorker(ctx);
  const jobId = await ctx.platform.queue.add(IMPORT_QUEUE, 'folder-import', data, { attempts: 2 });
  ctx.platform.audit.record({
    actor,
    action: 'data.import.start',
    resource: `import:${jobId}`,
    requestId: requestId ?? null,
    service: SERVICE_NAME,
    details: { path: dir, label: request.label ?? null, split_from_folders: data.splitFromFolders },
  });
  return jobId;
}

const workers = new WeakSet<object>();

/** Starts consuming import jobs on this platform's queue (once per platform). */
export function ensureImportWorker(ctx: DataContext): void {
  const queue = ctx.platform.queue;
  if (workers.has(queue)) return;
  workers.add(queue);
  void queue
    .process<ImportJobData>(
      IMPORT_QUEUE,
      async (job) => {
        const data = job.data;
        try {
          const result = await runImport(ctx, data, (p) => job.updateProgress(p));
          ctx.platform.audit.record({
            actor: data.actor,
            action: 'data.import',
            resource: `import:${job.id}`,
            requestId: data.requestId ?? null,
            service: SERVICE_NAME,
            details: { path: data.dir, total: result.total, ingested: result.ingested, duplicates: result.duplicates, rejected: result.rejected },
          });
          return result;
        } catch (err) {
          ctx.platform.audit.record({
            actor: data.actor,
            action: 'data.import',
            resource: `import:${job.id}`,
            outcome: 'failure',
            requestId: data.requestId ?? null,
            service: SERVICE_NAME,
            details: { path: data.dir, error: (err as Error).message },
          });
          throw err;
        }
      },
      { concurrency: 1 },
    )
    .catch((err) => ctx.platform.logger.error({ err }, 'cannot start the import worker'));
}

/**
 * The state and progress of an import job.
 * @throws AppError NOT_FOUND for an unknown job id.
 */
export async function getImport(ctx: DataContext, jobId: string): Promise<ImportStatus> {
  const job = await ctx.platform.queue.get<ImportJobData>(IMPORT_QUEUE, jobId);
  if (!job) throw new AppError('NOT_FOUND', `import job '${jobId}' does not exist`);
  const progress = ((job.state === 'completed' ? job.result : job.progress) as ImportProgress | null) ?? emptyProgress();
  return {
    job_id: job.id,
    state: job.state,
    path: job.data.dir,
    error: job.error,
    created_at: job.createdAt,
    updated_at: job.updatedAt,
    ...emptyProgress(),
    ...progress,
  };
}
