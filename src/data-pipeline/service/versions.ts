import { AppError } from '../../core/errors.js';
import { contentKey } from '../../core/objects/index.js';
import { parsePreprocessSpec, preprocessingHash, type PreprocessSpecInput } from '../../core/imaging/index.js';
import type { VersionRecord } from '../store/version-store.js';
import { CLASSES, type ClassLabel, type Page, type PageRequest, type Split, type SplitCounts } from '../store/types.js';
import { parseAugmentationSpec, type AugmentationSpecInput } from './augmentation.js';
import { NAMESPACES, SERVICE_NAME, type DataContext } from './context.js';
import { MANIFEST_SCHEMA, countSplits, manifestBytes, sortItems, versionIdOf, type DatasetManifest, type ManifestItem } from './manifest.js';
import { SPLIT_ALGORITHM, assignSplits, type SplitInput, type TestRule } from './split.js';

export interface CreateVersionRequest {
  name: string;
  valFraction?: number;
  testFraction?: number;
  seed?: number;
  preprocessing?: PreprocessSpecInput;
  augmentation?: AugmentationSpecInput;
  /** Classes to include (default both). */
  labels?: ClassLabel[];
  /** Leave out images carrying any of these quality flags (e.g. ['LOW_CONTRAST']). */
  excludeQualityFlags?: string[];
  /** Keep splits recorded at ingest (folder layout) for the patients that have one. */
  useRecordedSplits?: boolean;
  /** How the test split is held out (see `TestRule`); default random. */
  testBy?: TestRule;
  testNamesContaining?: string[];
}

export interface VersionView {
  id: string;
  name: string;
  created_at: number;
  created_by: string;
  seed: number;
  preprocessing_hash: string;
  item_count: number;
  counts: SplitCounts;
}

export interface CreateVersionResult {
  version: VersionView;
  /** false when an identical version already existed (it is returned unchanged). */
  created: boolean;
  /** Images left out, by reason (unlabelled, label conflict, quality flags). */
  excluded: Record<string, number>;
}

export function toVersionView(v: VersionRecord): VersionView {
  return {
    id: v.id,
    name: v.name,
    created_at: v.createdAt,
    created_by: v.createdBy,
    seed: v.seed,
    preprocessing_hash: v.preprocessingHash,
    item_count: v.itemCount,
    counts: v.counts,
  };
}

const VERSION_ID = /^[0-9a-f]{64}$/;

function checkVersionId(id: string): string {
  if (!VERSION_ID.test(id)) throw new AppError('INVALID_INPUT', `'${id}' is not a dataset version id (64 hex digits)`);
  return id;
}

function checkFraction(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0 || value >= 1) throw new AppError('INVALID_INPUT', `${name} must be in [0, 1)`);
  return value;
}

/**
 * Builds the manifest of a dataset version from the images currently stored (without storing
 * anything). Deterministic: same images, labels, patients, parameters and seed → same manifest.
 */
export async function buildManifest(ctx: DataContext, req: CreateVersionRequest): Promise<{ manifest: DatasetManifest; excluded: Record<string, number> }> {
  const valFraction = checkFraction('val_fraction', req.valFraction ?? 0.15);
  const testFraction = checkFraction('test_fraction', req.testFraction ?? 0);
  if (valFraction + testFraction >= 1) throw new AppError('INVALID_INPUT', 'val_fraction + test_fraction must be below 1');
  const testBy = req.testBy ?? 'random';
  const testNames = [...new Set((req.testNamesContaining ?? []).map((n) => n.trim()).filter((n) => n.length > 0))].sort();
  if (testBy === 'names') {
    if (testNames.length === 0) throw new AppError('INVALID_INPUT', "test_by 'names' needs test_names_containing (file-name substrings)");
  } else if (testNames.length > 0) throw new AppError('INVALID_INPUT', "test_names_containing needs test_by 'names'");
  if (testBy === 'period' && testFraction === 0) throw new AppError('INVALID_INPUT', "test_by 'period' needs a test_fraction above 0");
  const seed = req.seed ?? 42;
  if (!Number.isSafeInteger(seed)) throw new AppError('INVALID_INPUT', 'seed must be an integer');
  const labels = [...new Set(req.labels?.length ? req.labels : CLASSES)].sort() as ClassLabel[];
  const excludeFlags = [...new Set(req.excludeQualityFlags ?? [])].sort();
  const spec = parsePreprocessSpec(req.preprocessing ?? {});
  const augmentation = parseAugmentationSpec(req.augmentation ?? {});

  const conflicts = await ctx.images.labelConflicts();
  const excluded: Record<string, number> = {};
  const bump = (reason: string) => (excluded[reason] = (excluded[reason] ?? 0) + 1);
  const inputs: SplitInput[] = [];
  for await (const img of ctx.images.scan()) {
    if (img.label === 'unlabelled') bump('unlabelled');
    else if (!labels.includes(img.label)) bump('label_filter');
    else if (conflicts.has(img.hash)) bump('label_conflict');
    else if (img.qualityFlags.some((f) => excludeFlags.includes(f))) bump('quality_flags');
    else inputs.push({ hash: img.hash, label: img.label, patient: img.patientId, recordedSplit: img.split, sourceName: img.sourceName });
  }
  if (inputs.length === 0) throw new AppError('UNPROCESSABLE', 'no labelled images match; ingest images before creating a version');

  const splits = assignSplits(inputs, { valFraction, testFraction, seed, useRecordedSplits: req.useRecordedSplits ?? false, testBy, testNamesContaining: testNames });
  if (testBy !== 'random' && ![...splits.values()].includes('test')) throw new AppError('UNPROCESSABLE', `test_by '${testBy}' selected no images for the test split`);
  const items: ManifestItem[] = sortItems(
    inputs.map((i) => ({ hash: i.hash, label: i.label, patient: i.patient, split: splits.get(i.hash) as Split })),
  );
  const manifest: DatasetManifest = {
    schema: MANIFEST_SCHEMA,
    classes: [...CLASSES],
    seed,
    split: {
      algorithm: SPLIT_ALGORITHM,
      val_fraction: valFraction,
      test_fraction: testFraction,
      use_recorded_splits: req.useRecordedSplits ?? false,
      // Only when not the default, so versions made before these rules keep their ids.
      ...(testBy !== 'random' ? { test_by: testBy } : {}),
      ...(testBy === 'names' ? { test_names_containing: testNames } : {}),
    },
    filters: { labels, exclude_quality_flags: excludeFlags },
    preprocessing: { ...spec, hash: preprocessingHash(spec) },
    augmentation,
    items,
  };
  return { manifest, excluded };
}

/**
 * Creates (or finds) the dataset version for the current images and these parameters. The
 * manifest is stored content-addressed first, then the listing row; creating the same version
 * again returns the existing one with `created: false`.
 */
export async function createVersion(ctx: DataContext, req: CreateVersionRequest, actor: string, requestId?: string): Promise<CreateVersionResult> {
  const name = req.name?.trim();
  if (!name || name.length > 200) throw new AppError('INVALID_INPUT', 'name must be 1–200 characters');
  const { manifest, excluded } = await buildManifest(ctx, req);
  const id = versionIdOf(manifest);
  const existing = await ctx.versions.get(id);
  if (existing) return { version: toVersionView(existing), created: false, excluded };

  const key = contentKey(NAMESPACES.manifests, id, '.json');
  if (!(await ctx.platform.objects.exists(key))) await ctx.platform.objects.put(key, manifestBytes(manifest), 'application/json');
  const record: VersionRecord = {
    id,
    name,
    manifestKey: key,
    seed: manifest.seed,
    preprocessingHash: manifest.preprocessing.hash,
    itemCount: manifest.items.length,
    counts: countSplits(manifest.items),
    createdAt: Date.now(),
    createdBy: actor,
  };
  const created = await ctx.versions.insert(record);
  const version = created ? record : await ctx.versions.require(id);
  if (created) {
    ctx.platform.audit.record({
      actor,
      action: 'data.version.create',
      resource: `dataset:${id}`,
      requestId: requestId ?? null,
      service: SERVICE_NAME,
      details: { name, items: record.itemCount, counts: record.counts, seed: record.seed, preprocessing_hash: record.preprocessingHash, excluded },
    });
  }
  return { version: toVersionView(version), created, excluded };
}

/** The listing row of a version. @throws AppError NOT_FOUND, INVALID_INPUT (malformed id). */
export async function getVersion(ctx: DataContext, id: string): Promise<VersionRecord> {
  return ctx.versions.require(checkVersionId(id));
}

/** Versions, newest first. */
export function listVersions(ctx: DataContext, page: PageRequest = {}): Promise<Page<VersionRecord>> {
  return ctx.versions.list(page);
}

const MANIFEST_CACHE_SIZE = 8;

async function loadManifest(ctx: DataContext, id: string): Promise<{ manifest: DatasetManifest; hashes: Set<string> }> {
  const cached = ctx.manifests.get(id);
  if (cached) {
    ctx.manifests.delete(id);
    ctx.manifests.set(id, cached);
    return cached;
  }
  const version = await getVersion(ctx, id);
  const bytes = await ctx.platform.objects.get(version.manifestKey);
  const manifest = JSON.parse(bytes.toString('utf8')) as DatasetManifest;
  if (versionIdOf(manifest) !== version.id) throw new AppError('INTERNAL', `stored manifest of dataset version '${id}' does not match its id`);
  const entry = { manifest, hashes: new Set(manifest.items.map((i) => i.hash)) };
  ctx.manifests.set(id, entry);
  while (ctx.manifests.size > MANIFEST_CACHE_SIZE) ctx.manifests.delete(ctx.manifests.keys().next().value!);
  return entry;
}

/**
 * The manifest of a version, read back from the object store and checked against its id (then
 * kept in a small in-process cache: manifests never change). Treat it as read-only.
 * @throws AppError NOT_FOUND; INTERNAL when the stored bytes do not hash to the id.
 */
export async function getManifest(ctx: DataContext, id: string): Promise<DatasetManifest> {
  return (await loadManifest(ctx, id)).manifest;
}

/** Whether an image belongs to a version. @throws AppError NOT_FOUND for an unknown version. */
export async function versionHasImage(ctx: DataContext, id: string, hash: string): Promise<boolean> {
  return (await loadManifest(ctx, id)).hashes.has(hash);
}

export interface VersionDiff {
  a: string;
  b: string;
  /** In b, not in a. */
  added: ManifestItem[];
  /** In a, not in b. */
  removed: ManifestItem[];
  /** In both with another label, split or patient. */
  changed: { hash: string; from: Omit<ManifestItem, 'hash'>; to: Omit<ManifestItem, 'hash'> }[];
  unchanged: number;
  /** Top-level manifest fields (seed, split, filters, preprocessing, augmentation) that differ. */
  settings_changed: string[];
}

/** What changed from version a to version b. */
export async function diffVersions(ctx: DataContext, a: string, b: string): Promise<VersionDiff> {
  const [ma, mb] = await Promise.all([getManifest(ctx, a), getManifest(ctx, b)]);
  const inA = new Map(ma.items.map((i) => [i.hash, i]));
  const inB = new Map(mb.items.map((i) => [i.hash, i]));
  const diff: VersionDiff = { a, b, added: [], removed: [], changed: [], unchanged: 0, settings_changed: [] };
  for (const item of mb.items) if (!inA.has(item.hash)) diff.added.push(item);
  for (const item of ma.items) {
    const other = inB.get(item.hash);
    if (!other) diff.removed.push(item);
    else if (other.label !== item.label || other.split !== item.split || other.patient !== item.patient) {
      const { hash, ...from } = item;
      const { hash: _h, ...to } = other;
      diff.changed.push({ hash, from, to });
    } else diff.unchanged++;
  }
  for (const field of ['seed', 'split', 'filters', 'preprocessing', 'augmentation'] as const) {
    if (JSON.stringify(ma[field]) !== JSON.stringify(mb[field])) diff.settings_changed.push(field);
  }
  return diff;
}
