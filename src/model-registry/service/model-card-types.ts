/**
 * The model card document (GET …/versions/<v>/card) and its evaluation rows. Import-free, so the
 * web UI shares these types instead of restating them.
 */

export interface EvaluationSummary {
  split: string;
  n: number | null;
  positives: number | null;
  negatives: number | null;
  auc: number | null;
  auc_ci: [number, number] | null;
  ci_level: number | null;
  sensitivity: number | null;
  specificity: number | null;
  ppv: number | null;
  npv: number | null;
  f1: number | null;
  accuracy: number | null;
  threshold: number | null;
  confusion: { tp: number; fp: number; tn: number; fn: number } | null;
}

export interface ModelCard {
  model: {
    name: string;
    version: number;
    stage: string;
    aliases: string[];
    created: string;
    architecture: string | null;
    onnx_sha256: string | null;
    input: { name: string | null; size: number | null; channels: number };
    outputs: string[];
  };
  intended_use: { summary: string; users: string; out_of_scope: string[] };
  data: {
    dataset_version: string | null;
    source: string;
    licence: string;
    classes: string[] | null;
    positive_class: string | null;
    counts_per_class: Record<string, Record<string, number>> | null;
    preprocessing: unknown;
    preprocessing_hash: string | null;
  };
  evaluation: EvaluationSummary[];
  threshold: { value: number | null; method: string | null; how_chosen: string };
  training: {
    run_id: string | null;
    code_version: string | null;
    parent: { name: string; version: number } | null;
    hyperparameters: Record<string, unknown> | null;
    seed: unknown;
    best_epoch: unknown;
    /** Where the weights were trained (the trainer's model.json, else `card.trained_on`); null: not recorded. */
    trained_on: TrainedOn | null;
  };
  /** How candidate training recipes did on held-out splits built from the training data (`card.shift_evidence`). */
  shift_evidence: ShiftEvidence | null;
  /** What was tried on the way to this version, and whether it was kept (`card.tried`). */
  tried: TriedItem[] | null;
  /** Where the heatmaps fall on the validation split relative to the lung fields (null: not measured yet). */
  heatmap_location: LungFieldReport | null;
  /** Site calibrations of these weights: this version's own (a calibrated child) and those registered from it. */
  site_calibrations: SiteCalibrationSummary[];
  limitations: string[];
  generated_at: string;
}

/** Where a version's weights were trained; a field the record lacks is null. */
export interface TrainedOn {
  /** Device kind: 'cpu' or 'cuda'. */
  device: string | null;
  /** GPU model, or 'cpu'. */
  device_name: string | null;
  /** Processes of a distributed (torchrun) run; 1 for a single process. */
  processes: number | null;
  threads: number | null;
  /** PyTorch version. */
  torch: string | null;
  amp: boolean | null;
  /** 'model.json': recorded by the trainer; 'card': written into the card metadata afterwards. */
  source: 'model.json' | 'card';
}

/** One line for where the weights were trained (the Markdown card and the web UI print the same). */
export function describeTrainedOn(t: TrainedOn): string {
  const parts = [
    `${t.device ?? 'device not recorded'}${t.device_name && t.device_name !== t.device ? ` (${t.device_name})` : ''}`,
    t.processes !== null ? `${t.processes} process${t.processes === 1 ? '' : 'es'}` : null,
    t.threads !== null ? `${t.threads} thread${t.threads === 1 ? '' : 's'}` : null,
    t.torch ? `PyTorch ${t.torch}` : null,
    t.amp !== null ? `AMP ${t.amp ? 'on' : 'off'}` : null,
  ];
  return `${parts.filter((p) => p !== null).join(', ')}${t.source === 'card' ? ' (from the card metadata)' : ''}`;
}

/** One candidate recipe on one held-out split, at the candidate's own validation threshold. */
export interface ShiftEvidenceRow {
  candidate: string;
  split: string;
  description: string;
  n: number | null;
  positives: number | null;
  negatives: number | null;
  auc: number | null;
  auc_ci: [number, number] | null;
  sensitivity: number | null;
  specificity: number | null;
  threshold: number | null;
  /** The candidate this version was trained with. */
  shipped: boolean;
}

export interface ShiftEvidence {
  /** How the held-out splits were built (leave-file-family-out, later period, …). */
  protocol: string;
  rows: ShiftEvidenceRow[];
}

export interface TriedItem {
  what: string;
  result: string;
  kept: boolean;
}

/** Shares of heatmap mass (sum 1) in the lung fields and around them. */
export interface LungFieldShares {
  inside: number;
  /** Neck, shoulders. */
  above: number;
  /** Diaphragm, abdomen. */
  below: number;
  /** Mediastinum, heart, hila. */
  between: number;
  /** Towards the image's edges: side markers, outside the body. */
  lateral: number;
}

/** POST …/versions/<v>/lung-fields: how much CAM mass falls in the lung fields on the validation split. */
export interface LungFieldReport {
  method: 'cam';
  split: string;
  dataset_version: string;
  atlas: {
    kind: string;
    description: string;
    train_images: number;
    side: number;
    /** Share of the image the atlas calls lung: what a uniform map would put inside. */
    coverage: number;
    /**
     * The lung fields' bounding box in fractions of the model input (end exclusive); with a margin,
     * a box for the `input_crop` training hyper-parameter. Absent in reports measured before it existed.
     */
    bbox?: { top: number; bottom: number; left: number; right: number };
  };
  /** Validation images measured (failed to score ones are counted apart). */
  n: number;
  failed: number;
  /** Maps with no activation at all (a confident negative). */
  empty: number;
  mean_inside: number | null;
  median_inside: number | null;
  p10_inside: number | null;
  share_mostly_outside: number | null;
  regions: LungFieldShares | null;
  by_label: Record<string, { n: number; mean_inside: number | null; share_mostly_outside: number | null }>;
  measured_by: string;
  measured_at: string;
}

/** One site calibration as a card lists it. */
export interface SiteCalibrationSummary {
  /** The calibrated version. */
  version: number;
  parent: { name: string; version: number };
  /** true on the calibrated version's own card. */
  this_version: boolean;
  stage: string;
  data_kind: string;
  /** Dataset version id, or the sha256 of the folder manifest. */
  data_hash: string;
  split: string | null;
  n: number;
  positives: number;
  negatives: number;
  method: string;
  target_sensitivity: number | null;
  threshold: number;
  temperature: number;
  auc: number;
  sensitivity: { value: number; ci: [number, number]; k: number; n: number };
  specificity: { value: number; ci: [number, number]; k: number; n: number };
  ci_method: string;
  sufficient: boolean;
  positives_needed: number;
  negatives_needed: number;
  by: string;
  at: string;
}
