import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { QUEUE_NAME, SERVICE_NAME, STALE_AFTER_MS, type TrainingContext } from './context.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Only signal a pid that is still a trainer worker (pids get reused). */
function isTrainerWorker(pid: number, id: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.includes('trainer') && cmdline.some((part) => part.includes(id));
  } catch {
    return false;
  }
}

interface Orphanable {
  id: string;
  workerHost: string | null;
  workerPid: number | null;
  ownerPid: number | null;
  heartbeatAt: number | null;
  updatedAt: number;
}

/**
 * A running record nobody runs any more: its heartbeat stopped, or it ran on this machine and both
 * its worker and the service process that ran it are gone. Another replica on this host may still
 * be finishing it (storing artifacts) after its worker exited, so a dead worker alone proves nothing.
 */
function isOrphaned(ctx: TrainingContext, r: Orphanable, now: number): boolean {
  if (ctx.active.has(r.id)) return false;
  const beat = r.heartbeatAt ?? r.updatedAt;
  if (now - beat > STALE_AFTER_MS) return true;
  if (r.workerHost !== ctx.host) return false;
  const ownerGone = r.ownerPid === null || r.ownerPid === process.pid || !isAlive(r.ownerPid);
  return ownerGone && r.workerPid !== null && !isAlive(r.workerPid);
}

function stopOrphanWorker(ctx: TrainingContext, r: Orphanable): void {
  if (r.workerHost === ctx.host && r.workerPid !== null && isAlive(r.workerPid) && isTrainerWorker(r.workerPid, r.id)) {
    try {
      process.kill(r.workerPid, 'SIGTERM'); // it checkpoints on the way out
    } catch {
      /* gone meanwhile */
    }
  }
}

/**
 * Every page of a listing, oldest first. Listings are newest first; records go back on the queue
 * oldest first, so the queue keeps its order.
 */
async function oldestFirst<T extends { id: string; createdAt: number }>(list: (pageToken: string | undefined) => Promise<{ items: T[]; nextPageToken?: string }>): Promise<T[]> {
  const all: T[] = [];
  for (let token: string | undefined, first = true; first || token; first = false) {
    const page = await list(token);
    token = page.nextPageToken;
    all.push(...page.items);
  }
  return all.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
}

const INTERRUPTED = 'the training service stopped while this ran; resume it to continue from its last checkpoint';

/**
 * Brings stored state in line with reality after a restart (and periodically): a job or study
 * marked running whose worker is gone becomes `interrupted` (a job is then resumable from its
 * last checkpoint); a queued one whose queue entry was lost is queued again.
 */
export async function recover(ctx: TrainingContext): Promise<{ interrupted: string[]; requeued: string[] }> {
  const { store, platform } = ctx;
  const now = Date.now();
  const interrupted: string[] = [];
  const requeued: string[] = [];

  for (const job of await oldestFirst((pageToken) => store.listJobs({ states: ['running', 'queued'], pageSize: 200, pageToken }))) {
    if (job.state === 'running' && isOrphaned(ctx, job, now)) {
      stopOrphanWorker(ctx, job);
      const changed = await store.updateJob(job.id, { state: 'interrupted', workerPid: null, finishedAt: now, error: INTERRUPTED }, ['running']);
      if (!changed) continue;
      interrupted.push(job.id);
      await ctx.record(job.id, job.attempt, 'state', { state: 'interrupted', attempt: job.attempt, error: INTERRUPTED });
      await ctx.tracker.endRun(job.runId, 'KILLED');
      platform.audit.record({
        actor: 'system',
        action: 'training.interrupted',
        resource: `training-job:${job.id}`,
        outcome: 'failure',
        service: SERVICE_NAME,
        details: { attempt: job.attempt, last_checkpoint_epoch: job.lastCheckpoint?.epoch ?? null },
      });
    } else if (job.state === 'queued' && (await needsRequeue(ctx, job.queueJobId))) {
      const queueJobId = randomUUID();
      if (await store.updateJob(job.id, { queueJobId }, ['queued'])) {
        await platform.queue.add(QUEUE_NAME, 'train', { kind: 'job', id: job.id }, { jobId: queueJobId });
        requeued.push(job.id);
      }
    }
  }

  for (const study of await oldestFirst((pageToken) => store.listStudies({ states: ['running', 'queued'], pageSize: 200, pageToken }))) {
    if (study.state === 'running' && isOrphaned(ctx, study, now)) {
      stopOrphanWorker(ctx, study);
      if (await store.updateStudy(study.id, { state: 'interrupted', workerPid: null, finishedAt: now, error: 'the training service stopped while the study ran' }, ['running'])) {
        interrupted.push(study.id);
        await ctx.record(study.id, 1, 'state', { state: 'interrupted' });
      }
    } else if (study.state === 'queued' && (await needsRequeue(ctx, study.queueJobId))) {
      const queueJobId = randomUUID();
      if (await store.updateStudy(study.id, { queueJobId }, ['queued'])) {
        await platform.queue.add(QUEUE_NAME, 'optimize', { kind: 'study', id: study.id }, { jobId: queueJobId });
        requeued.push(study.id);
      }
    }
  }
  if (interrupted.length || requeued.length) ctx.logger.info({ interrupted, requeued }, 'training recovery');
  return { interrupted, requeued };
}

/** A queued record needs a new queue entry when its entry is gone or already done (handed out while we were down). */
async function needsRequeue(ctx: TrainingContext, queueJobId: string | null): Promise<boolean> {
  if (!queueJobId) return true;
  const entry = await ctx.platform.queue.get(QUEUE_NAME, queueJobId);
  return !entry || entry.state === 'completed' || entry.state === 'failed';
}
