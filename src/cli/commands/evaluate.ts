import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { pino } from 'pino';
import { AppError } from '../../core/errors.js';
import { rocCurvePng } from '../../core/ml/index.js';
import { SPLITS, type Split } from '../../data-pipeline/store/types.js';
import { findShifts, type ImageShift } from '../../core/imaging/index.js';
import { ServiceClient } from '../client.js';
import type { DatasetReader, EvaluationOptions, EvaluationReport, EvaluationResult, EvaluationScorer, ModelTarget, RobustnessRow } from '../evaluation.js';
import { parseModelRef } from '../model-ref.js';

/** The evaluation code is loaded only when `xray evaluate` runs, never by `xray serve`. */
const loadEvaluation = () => import('../evaluation.js');
/** Runs ONNX Runtime in this process (a local --onnx file only). */
const loadOnnxScorer = () => import('../evaluation-onnx.js');

/**
 * `xray evaluate`: a model on a labelled folder (or a dataset version's split) through the real
 * serving path. A registered version is evaluated through the platform's API (XRAY_URL, XRAY_API_KEY:
 * the registry resolves it, the deployment scores the images, the data pipeline serves a dataset
 * version); a local --onnx file, in no registry, in this process.
 */

export interface EvaluateCommandOptions {
  model?: string;
  onnx?: string;
  dataset?: string;
  split?: string;
  out?: string;
  roc?: string;
  reference?: string;
  limit?: string;
  seed?: string;
  bootstrap?: string;
  shifts?: string[] | boolean;
  json?: boolean;
}

function integer(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new AppError('INVALID_INPUT', `${name} must be an integer ≥ ${min}, got '${value}'`);
  return n;
}

/** The evaluation options from the command line. @throws AppError INVALID_INPUT. */
export function evaluationOptions(folder: string | undefined, o: EvaluateCommandOptions): EvaluationOptions {
  if (Boolean(o.model) === Boolean(o.onnx)) throw new AppError('INVALID_INPUT', 'give exactly one of --model name@alias|version and --onnx <file>');
  const model: ModelTarget = o.onnx ? { kind: 'onnx', path: o.onnx } : { kind: 'registry', ...parseModelRef(o.model!) };
  if (Boolean(folder) === Boolean(o.dataset)) throw new AppError('INVALID_INPUT', 'give either a folder in the {NORMAL,PNEUMONIA} layout or --dataset <version id> (with --split)');
  const split = (o.split ?? 'val') as Split;
  if (!(SPLITS as readonly string[]).includes(split)) throw new AppError('INVALID_INPUT', `--split must be one of ${SPLITS.join(', ')}, got '${o.split}'`);
  return {
    model,
    source: folder ? { kind: 'folder', dir: folder } : { kind: 'dataset', version: o.dataset!, split },
    limit: integer('--limit', o.limit, 1),
    seed: integer('--seed', o.seed, 0),
    bootstrap: integer('--bootstrap', o.bootstrap, 0),
    reference: Boolean(o.reference),
  };
}

/** The shifts `--shifts` asks for: all of them for a bare flag. @throws AppError INVALID_INPUT. */
export function requestedShifts(o: EvaluateCommandOptions): ImageShift[] {
  if (o.shifts === undefined || o.shifts === false) return [];
  return findShifts(o.shifts === true ? [] : o.shifts.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean));
}

/** The robustness table as Markdown: one row per shift, metrics at the model's stored threshold. */
export function formatRobustness(rows: RobustnessRow[]): string {
  const d = (x: number | null, ref: number | null) => (x === null || ref === null ? '' : ` (${x - ref >= 0 ? '+' : '−'}${Math.abs(x - ref).toFixed(3)})`);
  const base = rows[0] ?? null;
  const lines = ['| shift | n | AUC (95% CI) | sensitivity | specificity | accuracy |', '|---|---|---|---|---|---|'];
  for (const r of rows) {
    const ci = r.auc_ci ? ` (${f3(r.auc_ci[0])}–${f3(r.auc_ci[1])})` : '';
    const delta = (k: 'auc' | 'sensitivity' | 'specificity') => (r === base ? '' : d(r[k], base ? base[k] : null));
    lines.push(`| ${r.shift} | ${r.n}${r.failed ? ` (${r.failed} failed)` : ''} | ${f4(r.auc)}${ci}${delta('auc')} | ${f3(r.sensitivity)}${delta('sensitivity')} | ${f3(r.specificity)}${delta('specificity')} | ${f3(r.accuracy)} |`);
  }
  if (base) lines.push('', `All rows at the model's stored threshold ${f4(base.threshold)}; differences to the unshifted row in brackets.`);
  return lines.join('\n');
}

const f3 = (x: number | null | undefined) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const f4 = (x: number | null | undefined) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(4) : 'n/a');

/** The human-readable summary `xray evaluate` prints. */
export function formatReport(r: EvaluationReport, files: { out?: string; roc?: string; reference?: string } = {}): string {
  const m = r.model;
  const where = r.data.kind === 'folder' ? r.data.folder : `dataset ${r.data.dataset_version} split ${r.data.split}`;
  const pc = r.counts.per_class;
  const c = r.confusion;
  const version = /^\d+$/.test(m.version) ? `v${m.version}` : m.version;
  const thresholdFrom = m.threshold_source === 'registry' ? 'stored with the version' : m.threshold_source === 'onnx-metadata' ? "from the file's metadata" : 'default 0.5: none recorded';
  const lines = [
    `model        ${m.name} ${version}${m.alias ? ` (${m.alias})` : ''} — ${m.source.uri}`,
    `             input ${m.input_size}px ${String(m.preprocessing.mode ?? '')}, threshold ${f4(m.threshold)} (${thresholdFrom})`,
  ];
  if (m.preprocessing.verified === false) lines.push("             note: the file's preprocessing hash does not match the spec used here; train/serve skew is possible");
  lines.push(
    `data         ${where}`,
    `             ${r.counts.images} images${r.counts.available > r.counts.images ? ` (seeded subset of ${r.counts.available})` : ''}: ${pc.NORMAL.found} NORMAL, ${pc.PNEUMONIA.found} PNEUMONIA; ${r.counts.evaluated} evaluated, ${r.counts.failed} failed${r.counts.skipped ? `; ${r.counts.skipped} other file(s) skipped` : ''}`,
    '',
    `AUC          ${f4(r.auc)}${r.auc_ci ? `  (95% CI ${f4(r.auc_ci[0])}–${f4(r.auc_ci[1])}, ${r.bootstrap.resamples} bootstrap resamples)` : r.auc === null ? '  (needs both classes)' : ''}`,
    `accuracy     ${f4(r.accuracy)}`,
    `sensitivity  ${f4(r.sensitivity)}  (${c.tp}/${c.tp + c.fn} PNEUMONIA flagged)`,
    `specificity  ${f4(r.specificity)}  (${c.tn}/${c.tn + c.fp} NORMAL cleared)`,
    `PPV          ${f4(r.ppv)}`,
    `NPV          ${f4(r.npv)}`,
    `F1           ${f4(r.f1)}`,
    '',
    `confusion matrix at threshold ${f4(r.threshold)}:`,
    `                   predicted NORMAL  predicted PNEUMONIA`,
    `  true NORMAL      ${String(c.tn).padStart(16)}  ${String(c.fp).padStart(19)}`,
    `  true PNEUMONIA   ${String(c.fn).padStart(16)}  ${String(c.tp).padStart(19)}`,
  );
  if (m.recorded && m.recorded.val_auc !== null) {
    const ci = m.recorded.auc_ci ? ` (95% CI ${f3(m.recorded.auc_ci[0])}–${f3(m.recorded.auc_ci[1])})` : '';
    lines.push('', `recorded at registration (validation of ${m.recorded.dataset_version ?? 'unknown dataset'}): AUC ${f4(m.recorded.val_auc)}${ci}, sensitivity ${f3(m.recorded.sensitivity)}, specificity ${f3(m.recorded.specificity)}`);
  }
  if (r.failures.length) {
    lines.push('', `${r.failures.length} file(s) not evaluated:`);
    for (const f of r.failures.slice(0, 20)) lines.push(`  ${f.file}: ${f.code} ${f.message}`);
    if (r.failures.length > 20) lines.push(`  … ${r.failures.length - 20} more in the JSON report`);
  }
  const written = [files.out ? `report ${files.out}` : null, files.roc ? `ROC curve ${files.roc}` : null, files.reference ? `drift reference ${files.reference}` : null].filter(Boolean);
  if (written.length) lines.push('', `wrote ${written.join(', ')}`);
  return lines.join('\n');
}

async function writeAtomic(file: string, data: string | Buffer): Promise<void> {
  const target = path.resolve(file);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(`${target}.tmp`, data);
  await rename(`${target}.tmp`, target);
}

/** Writes the JSON report, ROC PNG and drift reference that were asked for. */
export async function writeOutputs(result: EvaluationResult, files: { out?: string; roc?: string; reference?: string }, robustness?: RobustnessRow[]): Promise<void> {
  const r = result.report;
  if (files.out) await writeAtomic(files.out, `${JSON.stringify(robustness ? { ...r, robustness } : r, null, 1)}\n`);
  if (files.roc) {
    const label = `${r.model.name} ${/^\d+$/.test(r.model.version) ? `v${r.model.version}` : r.model.version}`;
    await writeAtomic(files.roc, await rocCurvePng([{ label, roc: r.roc, auc: r.auc }], { title: `ROC — ${label}, n=${r.n}` }));
  }
  if (files.reference && result.reference) await writeAtomic(files.reference, `${JSON.stringify(result.reference)}\n`);
}

/** Runs one evaluation with a progress bar on a TTY (stderr). */
export async function runEvaluation(scorer: EvaluationScorer, options: EvaluationOptions, datasets?: DatasetReader): Promise<EvaluationResult> {
  const tty = process.stderr.isTTY === true;
  const bar = tty
    ? new cliProgress.SingleBar(
        { format: 'evaluate [{bar}] {percentage}% | {value}/{total} | {failed} failed | ETA {eta_formatted}', hideCursor: true, clearOnComplete: true, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const { evaluateModel } = await loadEvaluation();
  try {
    return await evaluateModel(
      scorer,
      {
        ...options,
        onStart: (total) => bar?.start(total, 0, { failed: 0 }),
        onProgress: (done, _total, failed) => bar?.update(done, { failed }),
      },
      datasets,
    );
  } finally {
    bar?.stop();
  }
}

/** The scorer of the model asked for; `close` ends what it holds. */
async function openScorer(target: ModelTarget, clients: { registry: ServiceClient; deployment: ServiceClient; data: ServiceClient }): Promise<{ scorer: EvaluationScorer; close(): Promise<void> }> {
  if (target.kind === 'onnx') {
    const { OnnxFileScorer } = await loadOnnxScorer();
    const scorer = await OnnxFileScorer.open(target.path, pino({ level: process.env.XRAY_LOG_LEVEL ?? 'error' }));
    return { scorer, close: () => scorer.close() };
  }
  const { ApiEvaluationScorer } = await import('../evaluation-api.js');
  return { scorer: await ApiEvaluationScorer.open(clients, target), close: async () => {} };
}

/** `xray evaluate` once its arguments are read: the result, and the robustness rows with --shifts. */
export async function evaluateCommand(
  options: EvaluationOptions,
  shifts: ImageShift[],
  context: { baseUrl?: string; apiKey?: string; note?: (line: string) => void } = {},
): Promise<{ result: EvaluationResult; rows: RobustnessRow[] | undefined }> {
  const client = (service: 'model-registry' | 'deployment' | 'data-pipeline') => new ServiceClient(service, context.baseUrl, context.apiKey ?? process.env.XRAY_API_KEY);
  const clients = { registry: client('model-registry'), deployment: client('deployment'), data: client('data-pipeline') };
  const { ApiDatasetReader } = await import('../evaluation-api.js');
  const datasets = new ApiDatasetReader(clients.data);
  const { robustnessRow } = await loadEvaluation();
  const { scorer, close } = await openScorer(options.model, clients);
  try {
    const result = await runEvaluation(scorer, options, datasets);
    const rows = shifts.length ? [robustnessRow(result.report)] : undefined;
    for (const shift of shifts) {
      context.note?.(`shift '${shift.name}'…`);
      rows!.push(robustnessRow((await runEvaluation(scorer, { ...options, reference: false, shift }, datasets)).report));
    }
    return { result, rows };
  } finally {
    await close();
  }
}

export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .argument('[folder]', 'labelled images in the layout <folder>/{NORMAL,PNEUMONIA}/*.{jpeg,jpg,png,dcm} (train/val/test subfolders are walked too)')
    .option('--model <name@ref>', 'registered model: name@alias or name@version (e.g. pneumonia@production, pneumonia@3)')
    .option('--onnx <file>', 'an ONNX file that is not in the registry (threshold from its metadata)')
    .option('--dataset <version>', 'evaluate a dataset version of the data pipeline instead of a folder')
    .option('--split <split>', 'split of --dataset: train | val | test', 'val')
    .option('--out <file>', 'write the JSON report here')
    .option('--roc <file>', 'write the ROC curve PNG here')
    .option('--reference <file>', "also write the drift reference (image statistics, embeddings, probabilities) in the registry's reference.json format")
    .option('--limit <n>', 'evaluate a seeded random subset of at most n images')
    .option('--seed <n>', 'seed of --limit and of the bootstrap', '0')
    .option('--bootstrap <n>', 'bootstrap resamples for the AUC confidence interval', '1000')
    .option('--shifts [names...]', 'robustness table: evaluate the set again under each acquisition shift (all when no name is given; names as printed, comma-separated or repeated)')
    .option('--json', 'print the JSON report instead of the summary')
    .description(
      "evaluate a model on labelled images through the serving path (same preprocessing and ONNX Runtime session as /predict) at the model's stored threshold: AUC with 95% CI, accuracy, sensitivity, specificity, PPV, NPV, confusion matrix. A registered version goes through the platform's API (XRAY_URL, XRAY_API_KEY; nothing is recorded as a prediction); a local --onnx file runs in this process.",
    )
    .action(async (folder: string | undefined, o: EvaluateCommandOptions) => {
      const { result, rows } = await evaluateCommand(evaluationOptions(folder, o), requestedShifts(o), { note: o.json ? undefined : (line) => process.stderr.write(`${line}\n`) });
      await writeOutputs(result, o, rows);
      if (o.json) console.log(JSON.stringify(rows ? { ...result.report, robustness: rows } : result.report, null, 1));
      else console.log(formatReport(result.report, o) + (rows ? `\n\nrobustness (${rows.length - 1} shifts):\n${formatRobustness(rows)}` : ''));
    });
}
