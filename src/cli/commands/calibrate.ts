import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { z } from 'zod';
import { siteManifest } from '../../core/ml/site-manifest.js';
import { sha256Hex } from '../../core/objects/index.js';
import { planImport } from '../../data-pipeline/service/import-files.js';
import type { calibrateResult } from '../../model-registry/routes/schemas.js';
import { ApiError, ServiceClient } from '../client.js';

/**
 * `xray calibrate`: site calibration through the platform's API. A labelled folder
 * ({NORMAL,PNEUMONIA}/…) is uploaded to the registry, which has the deployment score it through
 * the serving path, fits a threshold and a temperature, and registers a child version; the site
 * data's manifest hash is computed here too and checked against the registry's.
 */

export type CalibrateResult = z.infer<typeof calibrateResult>;

export interface CalibrateCommandOptions {
  model: string;
  targetSensitivity?: number;
  youden?: boolean;
  minCases?: number;
  split?: string;
  ci?: 'wilson' | 'clopper-pearson';
  promote?: boolean;
  json?: boolean;
}

/** Images one upload may carry (the services' multipart file limit). */
export const MAX_UPLOAD_FILES = 1000;

function modelRef(value: string): { name: string; ref: string } {
  const at = value.lastIndexOf('@');
  const name = (at === -1 ? value : value.slice(0, at)).trim();
  const ref = (at === -1 ? 'production' : value.slice(at + 1)).trim();
  if (!name || !ref) throw new InvalidArgumentError(`--model '${value}' must be name@alias or name@version, e.g. pneumonia@production`);
  return { name, ref };
}

async function isDirectory(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isDirectory() ?? false;
}

const f3 = (x: number) => x.toFixed(3);
const ci = (p: { value: number; ci: [number, number]; k: number; n: number }) => `${f3(p.value)} (${p.k}/${p.n}; 95% CI ${f3(p.ci[0])}–${f3(p.ci[1])})`;

/** The summary `xray calibrate` prints. */
export function formatCalibration(r: CalibrateResult, local: { manifest: string | null } = { manifest: null }): string {
  const c = r.calibration;
  const v = r.model_version;
  const lines = [
    `registered ${v.name} v${v.version} (parent v${c.parent.version}, same ONNX ${c.parent.onnx_sha256.slice(0, 12)}…)`,
    `site data    ${c.data.kind === 'folder' ? 'folder manifest' : 'dataset version'} ${c.data.manifest_sha256}${c.data.split ? ` split ${c.data.split}` : ''}${local.manifest ? (local.manifest === c.data.manifest_sha256 ? ' (matches the local folder)' : ` (MISMATCH: the local folder hashes to ${local.manifest})`) : ''}`,
    `             ${c.data.n} cases: ${c.data.positives} PNEUMONIA, ${c.data.negatives} NORMAL${c.data.duplicates_dropped ? `; ${c.data.duplicates_dropped} duplicate(s) dropped` : ''}${c.data.failed ? `; ${c.data.failed} could not be scored` : ''}`,
    `method       ${c.method === 'sensitivity' ? `target sensitivity ${c.target_sensitivity}` : "Youden's J"}`,
    `temperature  ${c.temperature.toFixed(4)}  (NLL ${c.nll_before.toFixed(4)} → ${c.nll_after.toFixed(4)}; ECE ${f3(c.ece_before)} → ${f3(c.ece_after)})`,
    `threshold    ${c.threshold.toFixed(4)}  (on the served, calibrated probability)`,
    `sensitivity  ${ci(c.sensitivity)}`,
    `specificity  ${ci(c.specificity)}`,
    `AUC          ${c.auc.toFixed(4)}${c.auc_ci ? ` (95% CI ${f3(c.auc_ci[0])}–${f3(c.auc_ci[1])})` : ''}`,
    `intervals    ${c.sensitivity.method === 'wilson' ? 'Wilson score' : 'exact Clopper–Pearson'}; ±${c.sample_size.half_width} needs about ${c.sample_size.positives_needed} PNEUMONIA and ${c.sample_size.negatives_needed} NORMAL cases — ${c.sample_size.sufficient ? 'this site has enough' : `this site has ${c.sample_size.positives}/${c.sample_size.negatives} (half-width ±${f3(c.sample_size.achieved_half_width)})`}`,
    '             measured on the cases the threshold was fitted on: confirm on cases collected later',
  ];
  for (const f of r.failures.slice(0, 10)) lines.push(`  not scored: ${f.file}: ${f.code} ${f.message}`);
  const p = r.promotion;
  if (p.requested) {
    if (p.promoted) lines.push(`promoted     v${v.version} is now Production — gate: ${p.gate?.message ?? 'passed'}${p.gate?.servability ? `; canary: ${p.gate.servability.message}` : ''}`);
    else lines.push(`NOT promoted ${p.error?.code ?? ''}: ${p.error?.message ?? p.gate?.message ?? ''}`);
  } else lines.push(`promote it with: xray models promote ${v.name} ${v.version} --stage Production   (the gate compares AUCs on this site's cases)`);
  return lines.join('\n');
}

/**
 * Runs a calibration: `source` is a labelled folder or a dataset version id.
 * @throws ApiError with the platform's code (TOO_FEW_CASES, NOT_FOUND, …); InvalidArgumentError for bad options.
 */
export async function calibrate(client: ServiceClient, source: string, o: CalibrateCommandOptions): Promise<{ result: CalibrateResult; text: string }> {
  const { name, ref } = modelRef(o.model);
  if (o.youden && o.targetSensitivity !== undefined) throw new InvalidArgumentError('give --target-sensitivity or --youden, not both');
  const options: Record<string, string> = {
    method: o.youden ? 'youden' : 'sensitivity',
    target_sensitivity: String(o.targetSensitivity ?? 0.95),
    ci_method: o.ci ?? 'wilson',
    promote: String(Boolean(o.promote)),
    ...(o.minCases !== undefined ? { min_cases: String(o.minCases) } : {}),
  };
  const url = `/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(ref)}/calibrate`;
  let result: CalibrateResult;
  let manifest: string | null = null;
  if (await isDirectory(source)) {
    const dir = path.resolve(source);
    const plan = await planImport(dir, { root: dir });
    const files = plan.files.filter((f) => f.label === 'NORMAL' || f.label === 'PNEUMONIA');
    if (files.length === 0) throw new ApiError(400, 'INVALID_INPUT', `no labelled images in '${source}' (expected ${source}/NORMAL/* and ${source}/PNEUMONIA/*)`);
    if (files.length > MAX_UPLOAD_FILES) {
      throw new ApiError(400, 'INVALID_INPUT', `${files.length} images are more than one upload carries (${MAX_UPLOAD_FILES}); import the folder (xray data import, xray data version create --val-fraction 0) and calibrate on the dataset version id`);
    }
    const form = new FormData();
    for (const [k, v] of Object.entries(options)) form.append(k, v);
    const cases: { sha256: string; label: 'NORMAL' | 'PNEUMONIA'; file: string }[] = [];
    for (const f of files) {
      const bytes = await readFile(f.path);
      cases.push({ sha256: sha256Hex(bytes), label: f.label as 'NORMAL' | 'PNEUMONIA', file: f.relative });
      form.append(f.label, new Blob([new Uint8Array(bytes)]), f.relative);
    }
    manifest = siteManifest(cases).sha256;
    result = await client.request<CalibrateResult>('POST', url, form);
  } else if (/^[0-9a-f]{64}$/.test(source)) {
    result = await client.post<CalibrateResult>(url, { ...options, target_sensitivity: Number(options.target_sensitivity), promote: Boolean(o.promote), ...(o.minCases !== undefined ? { min_cases: o.minCases } : {}), dataset_version: source, ...(o.split ? { split: o.split } : {}) });
  } else {
    throw new ApiError(400, 'INVALID_INPUT', `'${source}' is neither a folder nor a dataset version id (64 hex digits)`);
  }
  return { result, text: o.json ? JSON.stringify(result, null, 2) : formatCalibration(result, { manifest }) };
}

function number(flag: string, min: number, max: number, integer = false) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= min || n >= max || (integer && !Number.isInteger(n))) throw new InvalidArgumentError(`${flag} must be ${integer ? 'an integer' : 'a number'} in (${min}, ${max})`);
    return n;
  };
}

export function registerCalibrate(program: Command): void {
  program
    .command('calibrate')
    .argument('<source>', 'a labelled folder ({NORMAL,PNEUMONIA}/…) or a dataset version id')
    .description("site calibration: fit a threshold and a temperature on your site's labelled cases and register them as a child version (same weights)")
    .requiredOption('--model <name@ref>', 'the parent version, e.g. pneumonia@production or pneumonia@3')
    .option('--target-sensitivity <s>', 'threshold: the highest reaching this sensitivity (default 0.95)', number('--target-sensitivity', 0, 1))
    .option('--youden', "threshold: Youden's J instead of a target sensitivity")
    .option('--min-cases <n>', 'refuse to fit with fewer PNEUMONIA or NORMAL cases than this (default 30, at least 10)', number('--min-cases', 9, 1e6, true))
    .option('--split <split>', 'dataset version: only this split (train, val, test)')
    .option('--ci <method>', 'interval method: wilson (default) or clopper-pearson')
    .option('--promote', 'then promote the calibrated version to Production through the gate (on this site\'s data)')
    .option('--json', 'print the JSON result')
    .action(async (source: string, o: CalibrateCommandOptions) => {
      if (o.ci && o.ci !== 'wilson' && o.ci !== 'clopper-pearson') throw new InvalidArgumentError('--ci must be wilson or clopper-pearson');
      console.log((await calibrate(new ServiceClient('model-registry'), source, o)).text);
    });
}
