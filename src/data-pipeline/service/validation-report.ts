import type { Label, Split } from '../store/types.js';

/** The validation report document (POST /validate). Type-only imports, so the web UI shares it. */

/** Largest near-duplicate threshold accepted: beyond it bands get too narrow for bucketing to help. */
export const MAX_NEAR_THRESHOLD = 16;

export interface NearDuplicateEntry {
  a: string;
  b: string;
  distance: number;
  labels: [Label, Label];
  splits: [Split | null, Split | null];
  cross_class: boolean;
  cross_split: boolean;
}

export interface ValidationReport {
  id: string;
  dataset: string;
  created_at: number;
  near_duplicate_threshold: number;
  /** No label conflicts, no cross-class near-duplicates, no leakage between splits. */
  ok: boolean;
  summary: {
    images: number;
    by_label: Record<Label, number>;
    by_split: Record<Split | 'none', number>;
    quality_flagged: number;
    quality_flags: Record<string, number>;
    label_conflicts: number;
    near_duplicates: number;
    near_duplicates_cross_class: number;
    patient_leaks: number;
    near_duplicate_leaks: number;
  };
  quality: { hash: string; file: string; flags: string[] }[];
  /** Identical bytes ingested with different labels. */
  label_conflicts: { hash: string; labels: Label[] }[];
  near_duplicates: NearDuplicateEntry[];
  leakage: {
    /** Patients with images in more than one split. */
    patients: { patient: string; splits: Partial<Record<Split, number>> }[];
    /** Near-duplicate pairs whose images sit in different splits. */
    near_duplicates: NearDuplicateEntry[];
  };
  /** Object store key of the stored report. */
  report_key: string;
}
