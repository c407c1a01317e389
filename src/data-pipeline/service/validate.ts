import { randomBytes } from 'node:crypto';
import { AppError } from '../../core/errors.js';
import { validateKey } from '../../core/objects/index.js';
import type { ImageSummary } from '../store/image-store.js';
import { LABELS, SPLITS, type Label, type Split } from '../store/types.js';
import { NAMESPACES, SERVICE_NAME, type DataContext } from './context.js';
import { MAX_NEAR_THRESHOLD, findNearDuplicates } from './near-duplicates.js';
import { getManifest } from './versions.js';
import type { NearDuplicateEntry, ValidationReport } from './validation-report.js';

export type { NearDuplicateEntry, ValidationReport } from './validation-report.js';

/** Default pHash distance (of 64 bits) at or below which two images count as near-duplicates. */
export const DEFAULT_NEAR_THRESHOLD = 4;
/** Longest list kept per section (the summary counts are complete). */
const MAX_LISTED = 1000;

export interface ValidateRequest {
  /** 'all' (every stored image, with splits recorded at ingest) or a dataset version id. */
  dataset: string;
  threshold?: number;
}

interface Item extends ImageSummary {
  /** Split under evaluation: the version's, or the one recorded at ingest. */
  evalSplit: Split | null;
}

async function itemsFor(ctx: DataContext, dataset: string): Promise<Item[]> {
  if (dataset === 'all') {
    const items: Item[] = [];
    for await (const img of ctx.images.scan()) items.push({ ...img, evalSplit: img.split });
    return items;
  }
  const manifest = await getManifest(ctx, dataset);
  const wanted = new Map(manifest.items.map((i) => [i.hash, i]));
  const items: Item[] = [];
  for await (const img of ctx.images.scan()) {
    const m = wanted.get(img.hash);
    if (m) items.push({ ...img, label: m.label, patientId: m.patient, evalSplit: m.split });
  }
  if (items.length !== wanted.size) throw new AppError('INTERNAL', `dataset version '${dataset}' refers to ${wanted.size - items.length} images no longer stored`);
  return items;
}

/**
 * Checks a dataset (all images, or one version) and stores the report as JSON in the object store
 * (`reports/validation/<dataset>/<id>.json`): quality flags, identical bytes with conflicting labels,
 * near-duplicates by perceptual hash (bucketed, so thousands of images take milliseconds), and
 * leakage — a patient, or a near-duplicate pair, spread over train/val/test.
 */
export async function validateDataset(ctx: DataContext, req: ValidateRequest, actor: string, requestId?: string): Promise<ValidationReport> {
  const dataset = req.dataset || 'all';
  if (dataset !== 'all' && !/^[0-9a-f]{64}$/.test(dataset)) throw new AppError('INVALID_INPUT', `dataset must be 'all' or a version id, got '${dataset}'`);
  const threshold = req.threshold ?? DEFAULT_NEAR_THRESHOLD;
  if (!Number.isInteger(threshold) || threshold < 0 || threshold > MAX_NEAR_THRESHOLD) {
    throw new AppError('INVALID_INPUT', `threshold must be an integer in [0, ${MAX_NEAR_THRESHOLD}]`);
  }
  const items = await itemsFor(ctx, dataset);
  const byHash = new Map(items.map((i) => [i.hash, i]));

  const byLabel = Object.fromEntries(LABELS.map((l) => [l, 0])) as Record<Label, number>;
  const bySplit = Object.fromEntries([...SPLITS, 'none'].map((s) => [s, 0])) as Record<Split | 'none', number>;
  const flagCounts: Record<string, number> = {};
  const quality: ValidationReport['quality'] = [];
  for (const i of items) {
    byLabel[i.label]++;
    bySplit[i.evalSplit ?? 'none']++;
    if (i.qualityFlags.length) {
      quality.push({ hash: i.hash, file: i.sourceName, flags: i.qualityFlags });
      for (const f of i.qualityFlags) flagCounts[f] = (flagCounts[f] ?? 0) + 1;
    }
  }

  const conflicts = await ctx.images.labelConflicts();
  const labelConflicts = [...conflicts].filter(([hash]) => byHash.has(hash)).map(([hash, labels]) => ({ hash, labels }));

  const near: NearDuplicateEntry[] = findNearDuplicates(items, threshold).map((p) => {
    const a = byHash.get(p.a)!;
    const b = byHash.get(p.b)!;
    return {
      ...p,
      labels: [a.label, b.label],
      splits: [a.evalSplit, b.evalSplit],
      cross_class: a.label !== b.label && a.label !== 'unlabelled' && b.label !== 'unlabelled',
      cross_split: a.evalSplit !== null && b.evalSplit !== null && a.evalSplit !== b.evalSplit,
    };
  });
  const nearLeaks = near.filter((p) => p.cross_split);

  const patientSplits = new Map<string, Partial<Record<Split, number>>>();
  for (const i of items) {
    if (!i.patientId || !i.evalSplit) continue;
    const s = patientSplits.get(i.patientId) ?? {};
    s[i.evalSplit] = (s[i.evalSplit] ?? 0) + 1;
    patientSplits.set(i.patientId, s);
  }
  const patientLeaks = [...patientSplits]
    .filter(([, s]) => Object.keys(s).length > 1)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([patient, splits]) => ({ patient, splits }));

  const crossClass = near.filter((p) => p.cross_class).length;
  const id = `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(4).toString('hex')}`;
  const reportKey = validateKey(`${NAMESPACES.reports}/${dataset}/${id}.json`);
  const report: ValidationReport = {
    id,
    dataset,
    created_at: Date.now(),
    near_duplicate_threshold: threshold,
    ok: labelConflicts.length === 0 && crossClass === 0 && patientLeaks.length === 0 && nearLeaks.length === 0,
    summary: {
      images: items.length,
      by_label: byLabel,
      by_split: bySplit,
      quality_flagged: quality.length,
      quality_flags: flagCounts,
      label_conflicts: labelConflicts.length,
      near_duplicates: near.length,
      near_duplicates_cross_class: crossClass,
      patient_leaks: patientLeaks.length,
      near_duplicate_leaks: nearLeaks.length,
    },
    quality: quality.slice(0, MAX_LISTED),
    label_conflicts: labelConflicts.slice(0, MAX_LISTED),
    near_duplicates: near.slice(0, MAX_LISTED),
    leakage: { patients: patientLeaks.slice(0, MAX_LISTED), near_duplicates: nearLeaks.slice(0, MAX_LISTED) },
    report_key: reportKey,
  };
  await ctx.platform.objects.put(reportKey, JSON.stringify(report), 'application/json');
  ctx.platform.audit.record({
    actor,
    action: 'data.validate',
    resource: dataset === 'all' ? 'dataset:all' : `dataset:${dataset}`,
    requestId: requestId ?? null,
    service: SERVICE_NAME,
    details: { report_key: reportKey, ok: report.ok, ...report.summary },
  });
  return report;
}
