import { AppError } from '../../core/errors.js';
import type { ObjectInfo, ObjectStore } from '../../core/objects/index.js';
import { ARTIFACT_NAMESPACE } from '../store/sql-tracking-store.js';

export interface GcResult {
  scanned: number;
  referenced: number;
  /** Unreferenced but written (or reused) within the grace period: an upload whose registration may not have landed yet. */
  kept_recent: number;
  removed: string[];
  dry_run: boolean;
  min_age_s: number;
}

/** Default grace period of artifact garbage collection (git gc keeps a similar window for the same race). */
export const GC_MIN_AGE_S = 3600;

export interface ArtifactGcDeps {
  objects: ObjectStore;
  /** Every object key a run or a model version (live or soft-deleted) references. */
  referencedKeys(): Promise<Set<string>>;
  audit(actor: string, outcome: 'success' | 'denied', requestId: string | undefined, details: Record<string, unknown>): void;
}

/**
 * Removes stored artifacts (`artifacts/…` objects) that no run or model version (live or
 * soft-deleted) references and that were not written or reused in the last `minAgeS` seconds
 * (a registration stores its bytes before its row: a younger object may be about to be referenced). Admin only.
 * @throws AppError FORBIDDEN for anyone but an admin.
 */
export async function collectArtifactGarbage(deps: ArtifactGcDeps, input: { actor: { name: string; role: string }; dryRun?: boolean; minAgeS?: number; requestId?: string }): Promise<GcResult> {
  if (input.actor.role !== 'admin') {
    deps.audit(input.actor.name, 'denied', input.requestId, {});
    throw new AppError('FORBIDDEN', 'only an admin may garbage-collect artifacts');
  }
  const minAgeS = input.minAgeS ?? GC_MIN_AGE_S;
  const cutoff = Date.now() - minAgeS * 1000;
  const objects: ObjectInfo[] = [];
  let pageToken: string | undefined;
  do {
    const page = await deps.objects.list(`${ARTIFACT_NAMESPACE}/`, { pageSize: 1000, pageToken });
    objects.push(...page.items);
    pageToken = page.nextPageToken;
  } while (pageToken);
  // Read references after listing, so an object written meanwhile is either listed-and-referenced or not listed.
  const referenced = await deps.referencedKeys();
  const unreferenced = objects.filter((o) => !referenced.has(o.key));
  const removed = unreferenced.filter((o) => o.modified <= cutoff).map((o) => o.key);
  const keptRecent = unreferenced.length - removed.length;
  if (!input.dryRun) for (const key of removed) await deps.objects.delete(key);
  deps.audit(input.actor.name, 'success', input.requestId, {
    scanned: objects.length,
    removed: removed.length,
    kept_recent: keptRecent,
    min_age_s: minAgeS,
    dry_run: Boolean(input.dryRun),
  });
  return { scanned: objects.length, referenced: objects.length - unreferenced.length, kept_recent: keptRecent, removed, dry_run: Boolean(input.dryRun), min_age_s: minAgeS };
}
