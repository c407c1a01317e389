import type { ModelVersionRecord } from '../store/registry-store.js';
import { describeTrainedOn, type EvaluationSummary, type ModelCard, type ShiftEvidence, type ShiftEvidenceRow, type SiteCalibrationSummary, type TrainedOn, type TriedItem } from './model-card-types.js';
import { lungFieldReportOf } from './lung-field-record.js';
import { siteCalibrationOf } from './site-calibration-record.js';
import { asRecord } from './as-record.js';

export type { EvaluationSummary, ModelCard } from './model-card-types.js';

/**
 * Model cards, generated from what was recorded when the version was registered (the trainer's
 * model.json: evaluation metrics, threshold, preprocessing, data counts, optional `card` texts).
 * Nothing is invented: a field that was not recorded says so.
 */


const DEFAULT_USE =
  'Decision support: flags frontal chest X-rays that may show pneumonia so that a clinician reviews them first. The output is a probability and a heatmap, not a diagnosis.';
const DEFAULT_USERS = 'Radiologists and clinicians who read the image themselves; ML engineers monitoring the model.';
const DEFAULT_OUT_OF_SCOPE = [
  'Diagnosis without a clinician reading the image',
  'Lateral views, CT, or non-chest images',
  'Telling bacterial from viral pneumonia, or detecting other findings',
];
const DEFAULT_LIMITATIONS = [
  'Metrics were measured on held-out splits of the training data source; performance on other hospitals, scanners or populations is unknown until measured there.',
  'The threshold trades sensitivity against specificity on the validation split; a different prevalence changes PPV and NPV.',
  'Heatmaps show where the model looked, not where the disease is.',
  'Probabilities are calibrated (temperature scaling) on the validation split only, when recorded.',
];

const THRESHOLD_METHODS: Record<string, string> = {
  youden: "Youden's J on the validation split: the score maximising sensitivity + specificity - 1.",
  sensitivity: 'The highest score reaching the target sensitivity on the validation split, so specificity is as high as it can be at that sensitivity.',
  robust:
    "Chosen away from the razor's edge of the validation ROC: the validation images and 12 shifted copies of them (exposure, contrast, gamma, blur, noise, aspect, crop, zoom) pooled; every threshold whose pooled Youden's J is within 0.02 of the best; the middle of that range in logit space.",
  fixed: 'A fixed value set by the trainer.',
  'site-sensitivity':
    "Site calibration: fitted on the site's own labelled cases, after a temperature fitted there by NLL — the highest served probability reaching the target sensitivity on those cases (see site_calibrations).",
  'site-youden': "Site calibration: fitted on the site's own labelled cases, after a temperature fitted there by NLL — Youden's J on those cases (see site_calibrations).",
  default: 'No threshold was recorded; the default 0.5 is used.',
};

function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

function strings(x: unknown): string[] | null {
  return Array.isArray(x) && x.every((s) => typeof s === 'string') ? (x as string[]) : null;
}

function text(...candidates: unknown[]): string | null {
  for (const c of candidates) if (typeof c === 'string' && c.trim()) return c;
  return null;
}

function ci(x: unknown): [number, number] | null {
  return Array.isArray(x) && x.length === 2 && x.every((v) => typeof v === 'number' && Number.isFinite(v)) ? (x as [number, number]) : null;
}

/** `trained_on` as the trainer writes it (model.json) or as written into `card`; null when neither says anything. */
function trainedOn(meta: Record<string, unknown>, card: Record<string, unknown>): TrainedOn | null {
  for (const [raw, source] of [
    [asRecord(meta.trained_on), 'model.json'],
    [asRecord(card.trained_on), 'card'],
  ] as const) {
    if (!raw) continue;
    const t: TrainedOn = {
      device: text(raw.device),
      device_name: text(raw.device_name),
      processes: num(raw.processes),
      threads: num(raw.threads),
      torch: text(raw.torch),
      amp: typeof raw.amp === 'boolean' ? raw.amp : null,
      source,
    };
    if (t.device !== null || t.device_name !== null || t.torch !== null) return t;
  }
  return null;
}

/** `card.shift_evidence`: malformed rows are left out, never an error. */
function shiftEvidence(card: Record<string, unknown>): ShiftEvidence | null {
  const raw = asRecord(card.shift_evidence);
  if (!raw) return null;
  const rows: ShiftEvidenceRow[] = [];
  for (const r of Array.isArray(raw.rows) ? raw.rows : []) {
    const x = asRecord(r);
    const candidate = text(x?.candidate);
    const split = text(x?.split);
    if (!x || candidate === null || split === null) continue;
    const n = num(x.n);
    const positives = num(x.positives);
    rows.push({
      candidate,
      split,
      description: text(x.description) ?? '',
      n,
      positives,
      negatives: num(x.negatives) ?? (n !== null && positives !== null ? n - positives : null),
      auc: num(x.auc),
      auc_ci: ci(x.auc_ci),
      sensitivity: num(x.sensitivity),
      specificity: num(x.specificity),
      threshold: num(x.threshold),
      shipped: x.shipped === true,
    });
  }
  const protocol = text(raw.protocol) ?? '';
  return rows.length || protocol ? { protocol, rows } : null;
}

/** `card.tried`: entries without a `what` are left out. */
function tried(card: Record<string, unknown>): TriedItem[] | null {
  if (!Array.isArray(card.tried)) return null;
  const items: TriedItem[] = [];
  for (const t of card.tried) {
    const x = asRecord(t);
    const what = text(x?.what);
    if (x && what !== null) items.push({ what, result: text(x.result) ?? '', kept: x.kept === true });
  }
  return items.length ? items : null;
}

/** Reduces an evaluation object (trainer/evaluate.py compute_metrics) to what a card shows. */
export function summarizeEvaluation(split: string, m: Record<string, unknown>): EvaluationSummary {
  const n = num(m.n);
  const positives = num(m.positives);
  const aucCi = ci(m.auc_ci);
  const c = asRecord(m.confusion);
  const confusion = c && ['tp', 'fp', 'tn', 'fn'].every((k) => typeof c[k] === 'number') ? (c as { tp: number; fp: number; tn: number; fn: number }) : null;
  return {
    split,
    n,
    positives,
    negatives: n !== null && positives !== null ? n - positives : null,
    auc: num(m.auc),
    auc_ci: aucCi,
    ci_level: aucCi ? num(m.ci_level) ?? 0.95 : null,
    sensitivity: num(m.sensitivity),
    specificity: num(m.specificity),
    ppv: num(m.ppv),
    npv: num(m.npv),
    f1: num(m.f1),
    accuracy: num(m.accuracy),
    threshold: num(m.threshold),
    confusion,
  };
}

/** Class counts per split from model.json (`class_counts` / `data_counts` / `counts`), when recorded. */
function countsPerClass(meta: Record<string, unknown>): Record<string, Record<string, number>> | null {
  const raw = asRecord(meta.class_counts) ?? asRecord(meta.data_counts) ?? asRecord(meta.counts) ?? asRecord(asRecord(meta.dataset)?.counts);
  if (!raw) return null;
  const out: Record<string, Record<string, number>> = {};
  for (const [split, value] of Object.entries(raw)) {
    const inner = asRecord(value);
    if (inner) {
      const counts = Object.fromEntries(Object.entries(inner).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
      if (Object.keys(counts).length) out[split] = counts;
    } else if (typeof value === 'number') {
      out.all = { ...(out.all ?? {}), [split]: value };
    }
  }
  return Object.keys(out).length ? out : null;
}

function siteSummary(x: ModelVersionRecord, self: number): SiteCalibrationSummary | null {
  const s = siteCalibrationOf(x);
  if (!s) return null;
  const prop = (p: typeof s.sensitivity) => ({ value: p.value, ci: p.ci, k: p.k, n: p.n });
  return {
    version: x.version,
    parent: { name: s.parent.name, version: s.parent.version },
    this_version: x.version === self,
    stage: x.current_stage,
    data_kind: s.data.kind,
    data_hash: s.data.manifest_sha256,
    split: s.data.split,
    n: s.data.n,
    positives: s.data.positives,
    negatives: s.data.negatives,
    method: s.method,
    target_sensitivity: s.target_sensitivity,
    threshold: s.threshold,
    temperature: s.temperature,
    auc: s.auc,
    sensitivity: prop(s.sensitivity),
    specificity: prop(s.specificity),
    ci_method: s.sensitivity.method,
    sufficient: s.sample_size.sufficient,
    positives_needed: s.sample_size.positives_needed,
    negatives_needed: s.sample_size.negatives_needed,
    by: s.calibrated_by,
    at: s.calibrated_at,
  };
}

/**
 * The card of a version. `calibrated`: versions carrying a site calibration of these weights (the
 * version itself, if calibrated, and its calibrated children), listed under site_calibrations.
 */
export function buildModelCard(v: ModelVersionRecord, now = Date.now(), calibrated: ModelVersionRecord[] = []): ModelCard {
  const meta = v.metadata ?? {};
  const card = asRecord(meta.card) ?? {};
  const evaluation: EvaluationSummary[] = [];
  if (v.metrics) evaluation.push(summarizeEvaluation('validation', v.metrics));
  const tests = asRecord(meta.test_metrics);
  if (tests) for (const [split, m] of Object.entries(tests)) if (asRecord(m)) evaluation.push(summarizeEvaluation(split, m as Record<string, unknown>));
  const own = siteCalibrationOf(v);
  const limitations = [...(strings(card.limitations) ?? [])];
  if (own) {
    evaluation.push({
      split: `site ${own.data.manifest_sha256.slice(0, 12)}`,
      n: own.data.n,
      positives: own.data.positives,
      negatives: own.data.negatives,
      auc: own.auc,
      auc_ci: own.auc_ci,
      ci_level: own.auc_ci ? 0.95 : null,
      sensitivity: own.sensitivity.value,
      specificity: own.specificity.value,
      ppv: own.confusion.tp + own.confusion.fp ? own.confusion.tp / (own.confusion.tp + own.confusion.fp) : null,
      npv: own.confusion.tn + own.confusion.fn ? own.confusion.tn / (own.confusion.tn + own.confusion.fn) : null,
      f1: own.confusion.tp ? (2 * own.confusion.tp) / (2 * own.confusion.tp + own.confusion.fp + own.confusion.fn) : 0,
      accuracy: (own.confusion.tp + own.confusion.tn) / own.data.n,
      threshold: own.threshold,
      confusion: own.confusion,
    });
    limitations.push(
      `Threshold and temperature were fitted on the site's own ${own.data.n} labelled cases (${own.data.positives} PNEUMONIA, ${own.data.negatives} NORMAL); the site sensitivity and specificity are measured on the same cases they were fitted on, so they are optimistic — confirm them on cases collected later.`,
    );
    if (!own.sample_size.sufficient) {
      limitations.push(
        `The site's intervals are wider than ±${own.sample_size.half_width}: about ${own.sample_size.positives_needed} PNEUMONIA and ${own.sample_size.negatives_needed} NORMAL cases are needed for ±${own.sample_size.half_width}.`,
      );
    }
  }
  const location = lungFieldReportOf(v);
  if (location && location.mean_inside !== null && location.mean_inside < 0.5) {
    limitations.push(
      `On validation only ${Math.round(location.mean_inside * 100)}% of the heatmap mass falls inside the lung fields (atlas proxy): the model may be using cues outside the lungs (markers, neck, abdomen, mediastinum). Check the regions in the heatmap location section.`,
    );
  }
  const siteCalibrations = calibrated.map((x) => siteSummary(x, v.version)).filter((x): x is SiteCalibrationSummary => x !== null).sort((a, b) => a.version - b.version);
  const method = v.threshold_method;
  const outputs = Array.isArray(meta.outputs) ? strings(meta.outputs) ?? [] : Object.keys(asRecord(meta.outputs) ?? {});
  return {
    model: {
      name: v.name,
      version: v.version,
      stage: v.current_stage,
      aliases: v.aliases,
      created: new Date(v.creation_timestamp).toISOString(),
      architecture: text(meta.model_name, meta.architecture),
      onnx_sha256: v.onnx?.sha256 ?? null,
      input: { name: v.input_name, size: v.input_size, channels: 1 },
      outputs: outputs.length ? outputs : v.has_features ? ['probability', 'features'] : ['probability'],
    },
    intended_use: {
      summary: text(card.intended_use, meta.intended_use) ?? DEFAULT_USE,
      users: text(card.users) ?? DEFAULT_USERS,
      out_of_scope: strings(card.out_of_scope) ?? DEFAULT_OUT_OF_SCOPE,
    },
    data: {
      dataset_version: v.dataset_version,
      source: text(card.data_source, meta.data_source, asRecord(meta.dataset)?.source) ?? 'not recorded at registration',
      licence: text(card.licence, card.license, meta.licence, meta.license, asRecord(meta.dataset)?.licence) ?? 'not recorded at registration',
      classes: strings(meta.classes),
      positive_class: text(meta.positive_class),
      counts_per_class: countsPerClass(meta),
      preprocessing: v.preprocessing ?? null,
      preprocessing_hash: v.preprocessing_hash,
    },
    evaluation,
    threshold: {
      value: v.threshold,
      method,
      how_chosen: method ? (THRESHOLD_METHODS[method] ?? `Method '${method}' as recorded by the trainer.`) : 'not recorded at registration',
    },
    training: {
      run_id: v.run_id,
      code_version: v.code_version,
      parent: v.parent,
      hyperparameters: asRecord(meta.hyperparameters),
      seed: meta.seed ?? null,
      best_epoch: meta.best_epoch ?? null,
      trained_on: trainedOn(meta, card),
    },
    shift_evidence: shiftEvidence(card),
    tried: tried(card),
    heatmap_location: location,
    site_calibrations: siteCalibrations,
    limitations: [...limitations, ...DEFAULT_LIMITATIONS],
    generated_at: new Date(now).toISOString(),
  };
}

const pct = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
/** Recorded text in a Markdown table cell. */
const cell = (x: string) => x.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');

function shiftEvidenceMarkdown(e: ModelCard['shift_evidence']): string[] {
  if (!e) return ['Not recorded.'];
  const lines = e.protocol ? [e.protocol] : [];
  if (e.rows.length === 0) return [...lines, '', 'No rows recorded.'];
  lines.push('', '| candidate | split | n (pos/neg) | AUC (95% CI) | sensitivity | specificity | threshold |', '|---|---|---|---|---:|---:|---:|');
  for (const r of e.rows) {
    const auc = `${pct(r.auc)}${r.auc_ci ? ` (${r.auc_ci[0].toFixed(3)}–${r.auc_ci[1].toFixed(3)})` : ''}`;
    lines.push(
      `| ${r.shipped ? '**' : ''}${cell(r.candidate)}${r.shipped ? '** (shipped)' : ''} | ${cell(r.split)}${r.description ? ` — ${cell(r.description)}` : ''} | ${r.n ?? 'n/a'} (${r.positives ?? '?'}/${r.negatives ?? '?'}) | ${auc} | ${pct(r.sensitivity)} | ${pct(r.specificity)} | ${pct(r.threshold)} |`,
    );
  }
  lines.push('', "Sensitivity and specificity at each candidate's own validation threshold.");
  return lines;
}

/** The card as Markdown (docs/, the web UI, a PR description). */
export function renderModelCardMarkdown(card: ModelCard): string {
  const m = card.model;
  const lines: string[] = [];
  lines.push(`# Model card: ${m.name} v${m.version}`, '');
  lines.push(`Stage **${m.stage}**${m.aliases.length ? ` (aliases: ${m.aliases.join(', ')})` : ''} · registered ${m.created}`);
  lines.push(`Architecture: ${m.architecture ?? 'not recorded'} · input \`${m.input.name ?? 'input'}\` [N,1,${m.input.size ?? 'H'},${m.input.size ?? 'W'}] · outputs ${m.outputs.map((o) => `\`${o}\``).join(', ')}`);
  if (m.onnx_sha256) lines.push(`ONNX sha256: \`${m.onnx_sha256}\``);
  lines.push('', '## Intended use', '', card.intended_use.summary, '', `Users: ${card.intended_use.users}`, '', 'Out of scope:');
  for (const o of card.intended_use.out_of_scope) lines.push(`- ${o}`);
  const d = card.data;
  lines.push('', '## Data', '', `- Dataset version: ${d.dataset_version ?? 'not recorded'}`, `- Source: ${d.source}`, `- Licence: ${d.licence}`);
  if (d.classes) lines.push(`- Classes: ${d.classes.join(', ')}${d.positive_class ? ` (positive: ${d.positive_class})` : ''}`);
  lines.push(`- Preprocessing hash: ${d.preprocessing_hash ? `\`${d.preprocessing_hash}\`` : 'not recorded'}`);
  if (d.counts_per_class) {
    const classes = [...new Set(Object.values(d.counts_per_class).flatMap((c) => Object.keys(c)))];
    lines.push('', `| split | ${classes.join(' | ')} |`, `|---|${classes.map(() => '---:').join('|')}|`);
    for (const [split, counts] of Object.entries(d.counts_per_class)) lines.push(`| ${split} | ${classes.map((c) => counts[c] ?? '').join(' | ')} |`);
  } else {
    lines.push('- Counts per class: not recorded at registration');
  }
  lines.push('', '## Evaluation', '');
  if (card.evaluation.length === 0) lines.push('No evaluation was recorded at registration.');
  else {
    lines.push('| split | n (pos/neg) | AUC (95% CI) | sensitivity | specificity | PPV | NPV | F1 |', '|---|---|---|---:|---:|---:|---:|---:|');
    for (const e of card.evaluation) {
      const ci = e.auc_ci ? ` (${e.auc_ci[0].toFixed(3)}–${e.auc_ci[1].toFixed(3)})` : '';
      lines.push(`| ${e.split} | ${e.n ?? 'n/a'} (${e.positives ?? '?'}/${e.negatives ?? '?'}) | ${pct(e.auc)}${ci} | ${pct(e.sensitivity)} | ${pct(e.specificity)} | ${pct(e.ppv)} | ${pct(e.npv)} | ${pct(e.f1)} |`);
    }
    for (const e of card.evaluation) {
      if (e.confusion) lines.push('', `Confusion (${e.split}, threshold ${e.threshold ?? card.threshold.value ?? 'n/a'}): TP ${e.confusion.tp}, FP ${e.confusion.fp}, TN ${e.confusion.tn}, FN ${e.confusion.fn}`);
    }
  }
  lines.push('', '## Shift evidence', '', ...shiftEvidenceMarkdown(card.shift_evidence));
  lines.push('', '## Threshold', '', `Value: ${card.threshold.value ?? 'not recorded'} · method: ${card.threshold.method ?? 'not recorded'}`, '', card.threshold.how_chosen);
  const t = card.training;
  lines.push('', '## Training', '', `- Run: ${t.run_id ?? 'not recorded'}`, `- Code version: ${t.code_version ?? 'not recorded'}`, `- Parent model: ${t.parent ? `${t.parent.name} v${t.parent.version}` : 'none'}`);
  if (t.hyperparameters) lines.push(`- Hyperparameters: \`${JSON.stringify(t.hyperparameters)}\``);
  lines.push(`- Where it was trained: ${t.trained_on ? describeTrainedOn(t.trained_on) : 'not recorded'}`);
  lines.push('', '## What was tried', '');
  if (!card.tried) lines.push('Not recorded.');
  else {
    lines.push('| what | result | kept |', '|---|---|---|');
    for (const x of card.tried) lines.push(`| ${cell(x.what)} | ${cell(x.result)} | ${x.kept ? 'yes' : 'no'} |`);
  }
  lines.push('', '## Heatmap location', '');
  const h = card.heatmap_location;
  if (!h) lines.push('Not measured yet (POST /models/<name>/versions/<v>/lung-fields, or the model card in the web UI).');
  else {
    const share = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${(x * 100).toFixed(1)}%`);
    lines.push(
      `Share of class-activation mass inside the lung fields on ${h.n} ${h.split} images of \`${h.dataset_version.slice(0, 16)}…\` (${h.failed} failed, ${h.empty} without activation): mean ${share(h.mean_inside)}, median ${share(h.median_inside)}, 10th percentile ${share(h.p10_inside)}; ${share(h.share_mostly_outside)} of the maps put most of their mass outside. A map spread evenly would put ${share(h.atlas.coverage)} inside.`,
    );
    if (h.regions) lines.push('', `Outside: above (neck, shoulders) ${share(h.regions.above)} · below (abdomen) ${share(h.regions.below)} · between (mediastinum, heart) ${share(h.regions.between)} · lateral (edges, markers) ${share(h.regions.lateral)}.`);
    lines.push('', `Lung-field proxy (${h.atlas.kind}, ${h.atlas.train_images} training images): ${h.atlas.description}`);
    const b = h.atlas.bbox;
    if (b) lines.push('', `Lung fields' bounding box (fractions of the input): top ${b.top.toFixed(3)}, bottom ${b.bottom.toFixed(3)}, left ${b.left.toFixed(3)}, right ${b.right.toFixed(3)}; with a margin, a box for training with \`input_crop\` (\`xray train --input-crop top,bottom,left,right\`).`);
  }
  lines.push('', '## Site calibrations', '');
  if (card.site_calibrations.length === 0) lines.push('None: no site has calibrated these weights on its own labelled cases yet (`xray calibrate`).');
  else {
    lines.push(
      '| version | site data | n (pos/neg) | method | threshold | temperature | sensitivity (95% CI) | specificity (95% CI) | by, when |',
      '|---|---|---|---|---:|---:|---|---|---|',
    );
    const ci = (p: { value: number; ci: [number, number] }) => `${p.value.toFixed(3)} (${p.ci[0].toFixed(3)}–${p.ci[1].toFixed(3)})`;
    for (const s of card.site_calibrations) {
      const method = s.method === 'sensitivity' ? `sensitivity ≥ ${s.target_sensitivity}` : "Youden's J";
      lines.push(
        `| v${s.version}${s.this_version ? ' (this)' : ''} from v${s.parent.version} | ${s.data_kind === 'folder' ? 'folder' : 'dataset'} \`${s.data_hash.slice(0, 16)}…\`${s.split ? ` ${s.split}` : ''} | ${s.n} (${s.positives}/${s.negatives}) | ${method} | ${s.threshold.toFixed(4)} | ${s.temperature.toFixed(3)} | ${ci(s.sensitivity)} | ${ci(s.specificity)} | ${s.by}, ${s.at.slice(0, 16).replace('T', ' ')} |`,
      );
    }
    lines.push('', `Intervals: ${card.site_calibrations[0]!.ci_method === 'wilson' ? 'Wilson score' : 'exact Clopper–Pearson'}; measured on the cases the threshold was fitted on.`);
  }
  lines.push('', '## Limitations', '');
  for (const l of card.limitations) lines.push(`- ${l}`);
  lines.push('', `_Generated ${card.generated_at} from the registration record._`, '');
  return lines.join('\n');
}
