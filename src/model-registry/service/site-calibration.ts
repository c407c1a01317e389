import type { Platform } from '../../core/platform.js';
import { AppError, isAppError } from '../../core/errors.js';
import { fitSiteCalibration, requireEnoughCases, rocAuc, type CiMethod, type SiteThresholdMethod } from '../../core/ml/index.js';
import { siteManifest } from '../../core/ml/site-manifest.js';
import { sha256Hex } from '../../core/objects/index.js';
import { dataPipelineClient } from '../../data-pipeline/client/index.js';
import { deploymentScorer, type ScoreImage, type ScoreReport } from '../../deployment/client/scoring.js';
import type { SiteCalibration } from '../routes/schemas.js';
import type { GateVerdict, ModelVersionRecord } from '../store/registry-store.js';
import type { Actor, ModelRegistryService } from './registry-service.js';

/**
 * Site calibration (issue 21): a hospital adopts a registered model on its own labelled cases.
 * The deployment scores the cases through its serving path (decode, the version's preprocessing,
 * the same ONNX Runtime session class as /predict); the fit (src/core/ml/calibration.ts) gives a
 * temperature and a threshold with sensitivity/specificity intervals; the result is registered as
 * a child version with the same ONNX bytes (content-addressed: no new weights stored), the new
 * threshold and temperature, lineage to the parent and to the site data; optionally it is promoted
 * through the gate, which compares AUCs on that site's cases.
 */

export type SiteLabel = 'NORMAL' | 'PNEUMONIA';

export interface CalibrateInput {
  name: string;
  /** The parent: a version number or an alias ('production'). */
  version: string;
  data:
    | { kind: 'upload'; files: { file: string; label: SiteLabel; data: Buffer }[] }
    | { kind: 'dataset'; datasetVersion: string; split?: 'train' | 'val' | 'test' };
  method: SiteThresholdMethod;
  targetSensitivity: number;
  minCases: number;
  ciMethod: CiMethod;
  promote: boolean;
  actor: Actor;
  requestId?: string;
  /** The caller's credential, forwarded to the deployment and the data pipeline over HTTP. */
  authorization?: string;
}

export interface CalibrateOutcome {
  version: ModelVersionRecord;
  calibration: SiteCalibration;
  failures: { file: string; code: string; message: string }[];
  promotion: { requested: boolean; promoted: boolean; gate: GateVerdict | null; error: { code: string; message: string } | null };
}

export interface CalibrationDeps {
  registry: ModelRegistryService;
  platform: Platform;
  audit: (action: string, resource: string, outcome: 'success' | 'failure', details: Record<string, unknown>) => void;
}

/** Images per scoring call (under the multipart file limit of the deployment's route). */
const SCORE_CHUNK = 500;
const SITE_ARTIFACT = 'site-calibration.json';
const COPIED_ARTIFACTS = ['canary.json'];

interface Case {
  file: string;
  label: SiteLabel;
  image: ScoreImage;
}

async function scoreAll(platform: Platform, name: string, version: number, cases: Case[], ctx: { authorization?: string; requestId?: string; actor: string }): Promise<{ report: Omit<ScoreReport, 'results'>; results: ScoreReport['results'] }> {
  const scorer = deploymentScorer(platform);
  const results: ScoreReport['results'] = [];
  let report: Omit<ScoreReport, 'results'> | null = null;
  for (let i = 0; i < cases.length; i += SCORE_CHUNK) {
    const chunk = cases.slice(i, i + SCORE_CHUNK);
    const r = await scorer.score(name, version, chunk.map((c) => c.image), ctx);
    if (r.results.length !== chunk.length) throw new AppError('INTERNAL', `the deployment scored ${r.results.length} of ${chunk.length} images`);
    const { results: part, ...rest } = r;
    if (report && report.onnx_sha256 !== rest.onnx_sha256) throw new AppError('CONFLICT', `version ${version} of '${name}' changed while it was scored`);
    report = rest;
    results.push(...part);
  }
  return { report: report!, results };
}

export async function calibrateVersion(deps: CalibrationDeps, input: CalibrateInput): Promise<CalibrateOutcome> {
  const parent = await deps.registry.resolve(input.name, input.version);
  const resource = `model:${parent.name}/${parent.version}`;
  try {
    return await calibrate(deps, input, parent);
  } catch (err) {
    deps.audit('model.calibrate', resource, 'failure', { error: (err as Error).message, code: isAppError(err) ? err.code : 'INTERNAL', data: input.data.kind });
    throw err;
  }
}

async function calibrate(deps: CalibrationDeps, input: CalibrateInput, parent: ModelVersionRecord): Promise<CalibrateOutcome> {
  const { registry, platform } = deps;
  if (!parent.onnx) throw new AppError('UNPROCESSABLE', `version ${parent.version} of '${parent.name}' has no ONNX file to calibrate`);
  const ctx = { authorization: input.authorization, requestId: input.requestId, actor: input.actor.name };

  // ── the site's cases and their manifest hash ──
  let cases: Case[];
  let data: Pick<SiteCalibration['data'], 'kind' | 'manifest_sha256' | 'dataset_version' | 'split' | 'duplicates_dropped'>;
  if (input.data.kind === 'upload') {
    const files = input.data.files;
    if (files.length === 0) throw new AppError('INVALID_INPUT', 'no labelled images: send files whose part name is NORMAL or PNEUMONIA');
    const manifest = siteManifest(files.map((f) => ({ sha256: sha256Hex(f.data), label: f.label, file: f.file })));
    const dropped = new Set(manifest.duplicates);
    cases = files.filter((_, i) => !dropped.has(i)).map((f) => ({ file: f.file, label: f.label, image: { bytes: f.data, filename: f.file } }));
    data = { kind: 'folder', manifest_sha256: manifest.sha256, dataset_version: null, split: null, duplicates_dropped: dropped.size };
  } else {
    const { datasetVersion, split } = input.data;
    const items = (await dataPipelineClient(platform).versionItems(datasetVersion, ctx)).filter((i) => !split || i.split === split);
    if (items.length === 0) throw new AppError('INVALID_INPUT', `dataset version ${datasetVersion} has no images${split ? ` in split '${split}'` : ''}`);
    cases = items.map((i) => ({ file: `${i.split}/${i.label}/${i.hash}`, label: i.label, image: { sha256: i.hash } }));
    data = { kind: 'dataset_version', manifest_sha256: datasetVersion, dataset_version: datasetVersion, split: split ?? null, duplicates_dropped: 0 };
  }
  const count = (cs: { label: SiteLabel }[]) => ({ positives: cs.filter((c) => c.label === 'PNEUMONIA').length, negatives: cs.filter((c) => c.label === 'NORMAL').length });
  const before = count(cases);
  // Refuse before any model runs: a fit on too few cases is never made.
  requireEnoughCases(before.positives, before.negatives, input.minCases, { targetSensitivity: input.targetSensitivity });

  // ── scored through the deployment's serving path ──
  const scored = await scoreAll(platform, parent.name, parent.version, cases, ctx);
  const failures: CalibrateOutcome['failures'] = [];
  const ok: { c: Case; raw: number }[] = [];
  scored.results.forEach((r, i) => {
    if (r.ok) ok.push({ c: cases[i]!, raw: r.raw_probability });
    else failures.push({ file: cases[i]!.file, code: r.error.code, message: r.error.message });
  });
  const after = count(ok.map((o) => o.c));
  requireEnoughCases(after.positives, after.negatives, input.minCases, { targetSensitivity: input.targetSensitivity });
  const labels = ok.map((o) => (o.c.label === 'PNEUMONIA' ? 1 : 0));
  const raw = ok.map((o) => o.raw);
  const fit = fitSiteCalibration(labels, raw, { method: input.method, targetSensitivity: input.targetSensitivity, minCases: input.minCases, ciMethod: input.ciMethod, seed: 0 });

  // ── the production version on the same cases, for the gate ──
  let productionEvidence: SiteCalibration['gate_evidence']['production'] = null;
  const production = await registry.resolve(parent.name, 'production').catch(() => null);
  if (production?.onnx) {
    if (production.onnx.sha256 === parent.onnx.sha256) productionEvidence = { version: production.version, onnx_sha256: production.onnx.sha256, site_auc: fit.auc };
    else {
      const prod = await scoreAll(platform, production.name, production.version, ok.map((o) => o.c), ctx);
      const pl: number[] = [];
      const ps: number[] = [];
      prod.results.forEach((r, i) => {
        if (r.ok) {
          pl.push(labels[i]!);
          ps.push(r.raw_probability);
        }
      });
      const auc = pl.includes(0) && pl.includes(1) ? rocAuc(pl, ps) : NaN;
      productionEvidence = { version: production.version, onnx_sha256: prod.report.onnx_sha256, site_auc: Number.isFinite(auc) ? auc : null };
    }
  }

  const calibration: SiteCalibration = {
    format: 'xray-site-calibration/1',
    parent: { name: parent.name, version: parent.version, onnx_sha256: scored.report.onnx_sha256 },
    data: { ...data, n: fit.n, positives: fit.positives, negatives: fit.negatives, failed: failures.length },
    method: fit.method,
    target_sensitivity: fit.target_sensitivity,
    threshold: fit.threshold,
    temperature: fit.temperature,
    nll_before: fit.nll_before,
    nll_after: fit.nll_after,
    ece_before: fit.ece_before,
    ece_after: fit.ece_after,
    auc: fit.auc,
    auc_ci: fit.auc_ci,
    sensitivity: fit.sensitivity,
    specificity: fit.specificity,
    confusion: fit.confusion,
    sample_size: fit.sample_size,
    min_cases: fit.min_cases,
    gate_evidence: { site_auc: fit.auc, production: productionEvidence },
    calibrated_by: input.actor.name,
    calibrated_at: new Date().toISOString(),
  };

  // ── the child version: same bytes, new threshold and temperature, lineage ──
  const onnx = await registry.getArtifact(parent.name, parent.version, 'model.onnx');
  const extras: { path: string; data: Buffer; contentType?: string }[] = [];
  for (const path of COPIED_ARTIFACTS) {
    const a = await registry.getArtifact(parent.name, parent.version, path).catch(() => null);
    if (a) extras.push({ path, data: a.data, contentType: a.artifact.content_type });
  }
  // Every case that entered the fit (image hash, label, the file's raw output): anyone can re-fit and check.
  const perCase = ok.map((o) => ({ sha256: 'sha256' in o.c.image ? o.c.image.sha256 : sha256Hex(o.c.image.bytes), label: o.c.label, raw_probability: o.raw }));
  extras.push({ path: SITE_ARTIFACT, data: Buffer.from(JSON.stringify({ ...calibration, cases: perCase, failures }, null, 1)), contentType: 'application/json' });
  const method = input.method === 'sensitivity' ? 'site-sensitivity' : 'site-youden';
  const metadata: Record<string, unknown> = {
    ...(parent.metadata ?? {}),
    threshold: calibration.threshold,
    threshold_method: method,
    site_calibration: calibration,
  };
  const child = await registry.register({
    name: parent.name,
    actor: input.actor,
    requestId: input.requestId,
    source: { kind: 'upload', data: onnx.data, filename: 'model.onnx' },
    sourceUri: `calibration:models:/${parent.name}/${parent.version}`,
    metadata,
    // The parent's variant record, if any, is the registry's own (copied, not supplied by the caller).
    fromService: true,
    description: `Site calibration of v${parent.version} on ${calibration.data.n} labelled cases (${data.kind === 'folder' ? 'folder' : 'dataset version'} ${data.manifest_sha256.slice(0, 12)}…): threshold ${calibration.threshold.toPrecision(4)} (${method}), temperature ${calibration.temperature.toPrecision(4)}`,
    datasetVersion: parent.dataset_version ?? undefined,
    codeVersion: parent.code_version ?? undefined,
    parent: { name: parent.name, version: parent.version },
    tags: [
      { key: 'site_calibration.data', value: data.manifest_sha256 },
      { key: 'site_calibration.parent', value: String(parent.version) },
    ],
    extraArtifacts: extras,
  });
  deps.audit('model.calibrate', `model:${parent.name}/${child.version}`, 'success', {
    parent: parent.version,
    data: { kind: data.kind, manifest_sha256: data.manifest_sha256, split: data.split, n: fit.n, positives: fit.positives, negatives: fit.negatives, failed: failures.length },
    method,
    target_sensitivity: fit.target_sensitivity,
    threshold: fit.threshold,
    temperature: fit.temperature,
    sensitivity: fit.sensitivity.value,
    specificity: fit.specificity.value,
  });

  // ── the gate, on the site's data ──
  const promotion: CalibrateOutcome['promotion'] = { requested: input.promote, promoted: false, gate: null, error: null };
  let version = child;
  if (input.promote) {
    try {
      const r = await registry.setStage({ name: child.name, version: child.version, stage: 'Production', actor: input.actor, requestId: input.requestId, authorization: input.authorization });
      version = r.version;
      promotion.promoted = r.version.current_stage === 'Production';
      promotion.gate = r.verdict;
    } catch (err) {
      if (!isAppError(err) || !['GATE_FAILED', 'NOT_SERVABLE', 'SERVICE_UNAVAILABLE', 'CONFLICT', 'FORBIDDEN'].includes(err.code)) throw err;
      promotion.error = { code: err.code, message: err.message };
      promotion.gate = (err.details as { verdict?: GateVerdict } | undefined)?.verdict ?? null;
      version = await registry.resolve(child.name, child.version);
    }
  }
  return { version, calibration, failures, promotion };
}
