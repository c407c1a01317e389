import type { PreprocessSpec } from '../../core/imaging/index.js';
import type { AugmentationSpec } from './augmentation.js';
import { canonicalHash, canonicalJson } from '../../core/canonical-json.js';
import { CLASSES, SPLITS, type ClassLabel, type Split, type SplitCounts } from '../store/types.js';

export const MANIFEST_SCHEMA = 'xray-dataset-manifest/1';

export interface ManifestItem {
  hash: string;
  label: ClassLabel;
  /** Patient id (Kermany file-name id, given id, or salted DICOM pseudonym); null when unknown. */
  patient: string | null;
  split: Split;
}

/**
 * The immutable description of a dataset version. Its canonical JSON is what the object store
 * keeps, and the sha256 of those bytes is the version id: the same images, labels, patients,
 * split parameters, seed and specs give the same id on any machine. The display name is NOT part
 * of it (two names for the same content are one version).
 */
export interface DatasetManifest {
  schema: typeof MANIFEST_SCHEMA;
  classes: ClassLabel[];
  seed: number;
  split: {
    algorithm: string;
    val_fraction: number;
    test_fraction: number;
    use_recorded_splits: boolean;
    test_by?: 'period' | 'names';
    test_names_containing?: string[];
  };
  filters: { labels: ClassLabel[]; exclude_quality_flags: string[] };
  preprocessing: PreprocessSpec & { hash: string };
  augmentation: AugmentationSpec;
  /** Sorted by hash. */
  items: ManifestItem[];
}

/** Sorts items by hash so the manifest does not depend on database order. */
export function sortItems(items: ManifestItem[]): ManifestItem[] {
  return [...items].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
}

/** The bytes stored for a manifest (canonical JSON). */
export function manifestBytes(manifest: DatasetManifest): Buffer {
  return Buffer.from(canonicalJson(manifest), 'utf8');
}

/** The version id of a manifest: sha256 of its canonical JSON. */
export function versionIdOf(manifest: DatasetManifest): string {
  return canonicalHash(manifest);
}

export function countSplits(items: readonly ManifestItem[]): SplitCounts {
  const counts = Object.fromEntries(SPLITS.map((s) => [s, Object.fromEntries(CLASSES.map((c) => [c, 0]))])) as SplitCounts;
  for (const item of items) counts[item.split][item.label]++;
  return counts;
}
