import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { ApiError, ServiceClient } from '../../src/cli/client.js';
import { calibrate } from '../../src/cli/commands/calibrate.js';
import { testConfig } from '../../src/core/config/index.js';
import { applyServingTemperature, fitSiteCalibration, Rng, sigmoid } from '../../src/core/ml/index.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { TINY_MODEL } from './harness.js';

/**
 * Site calibration end to end (issue 21 item 1): registry + deployment + data pipeline in one
 * process on real sockets, the gateway in front for the CLI. The tiny fixture computes
 * sigmoid(6u − 3) for the mean pixel u, so generated images with overlapping brightness per class
 * make a model that ranks imperfectly and is mis-calibrated for the site.
 */

const admin = { name: 'ada', role: 'admin' as const };
const NOFEATURES = readFileSync(path.resolve(import.meta.dirname, '../deployment/fixtures/tiny-model-nofeatures.onnx'));

async function json(res: Response): Promise<any> {
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** A 64×64 greyscale PNG whose mean is about `mean` (seeded noise around it). */
async function xray(rng: Rng, mean: number): Promise<Buffer> {
  const px = Buffer.alloc(64 * 64);
  for (let i = 0; i < px.length; i++) px[i] = Math.max(0, Math.min(255, Math.round(mean * 255 + rng.normal() * 25)));
  return sharp(px, { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
}

/** `n` labelled cases per class: PNEUMONIA brighter on average, the classes overlapping. */
async function siteCases(seed: string, n: number): Promise<{ label: 'NORMAL' | 'PNEUMONIA'; file: string; data: Buffer }[]> {
  const rng = new Rng(seed);
  const out: { label: 'NORMAL' | 'PNEUMONIA'; file: string; data: Buffer }[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ label: 'PNEUMONIA', file: `PNEUMONIA/p${i}.png`, data: await xray(rng, Math.min(0.95, Math.max(0.05, 0.56 + rng.normal() * 0.09))) });
    out.push({ label: 'NORMAL', file: `NORMAL/n${i}.png`, data: await xray(rng, Math.min(0.95, Math.max(0.05, 0.44 + rng.normal() * 0.09))) });
  }
  return out;
}

function form(cases: { label: string; file: string; data: Buffer }[], fields: Record<string, string>): FormData {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  for (const c of cases) fd.append(c.label, new Blob([new Uint8Array(c.data)]), c.file);
  return fd;
}

/** The folder manifest as docs/TRAINING.md says to reproduce it with sha256sum. */
function manifestHash(cases: { label: string; data: Buffer }[]): string {
  const lines = [...new Set(cases.map((c) => `${createHash('sha256').update(c.data).digest('hex')} ${c.label}`))].sort();
  return createHash('sha256').update(`xray-site-data/1\n${lines.map((l) => `${l}\n`).join('')}`).digest('hex');
}

async function canaryJson(greys: number[]): Promise<Buffer> {
  const items = [];
  for (const g of greys) {
    const png = await sharp(Buffer.alloc(16 * 16, g), { raw: { width: 16, height: 16, channels: 1 } }).png().toBuffer();
    items.push({ png: png.toString('base64'), probability: sigmoid(6 * (g / 255) - 3) });
  }
  return Buffer.from(JSON.stringify({ format: 'xray-canary/1', input_size: 16, tolerance: 1e-4, items }));
}

describe('site calibration: xray calibrate, the API, lineage, card, serving and the gate', () => {
  let home: string;
  let running: RunningPlatform;
  let registry: ModelRegistryService;
  let base: string;
  let deployment: string;
  let cases: Awaited<ReturnType<typeof siteCases>>;
  let parentVersion: number;

  const calibrateUrl = (ref: string) => `${base}/models/pneumonia/versions/${ref}/calibrate`;

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-calibrate-'));
    running = await startPlatform({
      config: testConfig(home, { XRAY_HOST: '127.0.0.1' }),
      services: ['data-pipeline', 'model-registry', 'deployment', 'monitoring'],
      randomPorts: true,
      gateway: true,
    });
    registry = new ModelRegistryService(running.platform);
    base = running.urls['model-registry']!;
    deployment = running.urls.deployment!;
    const v1 = await registry.register({
      name: 'pneumonia',
      actor: admin,
      source: { kind: 'upload', data: TINY_MODEL, filename: 'model.onnx' },
      metadata: { input_size: 16, threshold: 0.5, metrics: { auc: 0.9 }, dataset_version: 'dv-train' },
      extraArtifacts: [{ path: 'canary.json', data: await canaryJson([0, 60, 128, 200, 255]) }],
    });
    parentVersion = v1.version;
    await registry.setStage({ name: 'pneumonia', version: v1.version, stage: 'Production', actor: admin });
    cases = await siteCases('site-a', 40);
  });
  after(async () => {
    await running?.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('too few cases is refused with a typed 422 and nothing is registered', async () => {
    const before = (await registry.getModel('pneumonia')).versions.length;
    const few = cases.slice(0, 24); // 12 per class
    const res = await fetch(calibrateUrl('production'), { method: 'POST', body: form(few, { method: 'sensitivity' }) });
    const body = await json(res);
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.equal(body.error.code, 'TOO_FEW_CASES');
    assert.match(body.error.message, /12 PNEUMONIA and 12 NORMAL, at least 30 of each/);
    assert.equal(body.error.details.needed.positives_for_sensitivity, 83);
    // --min-cases below the floor is bad input, not a fit.
    const floor = await fetch(calibrateUrl('production'), { method: 'POST', body: form(few, { min_cases: '5' }) });
    assert.equal(floor.status, 400);
    const wrongPart = new FormData();
    wrongPart.append('BRONCHITIS', new Blob([new Uint8Array(cases[0]!.data)]), 'x.png');
    assert.equal((await fetch(calibrateUrl('production'), { method: 'POST', body: wrongPart })).status, 400);
    assert.equal((await registry.getModel('pneumonia')).versions.length, before);
    const audit = await running.platform.audit.query({ action: 'model.calibrate' });
    assert.ok(audit.items.some((r) => r.outcome === 'failure'));
  });

  let child: any;
  let calibration: any;

  test('a labelled upload becomes a child version: same bytes, new threshold and temperature, lineage', async () => {
    const res = await fetch(calibrateUrl('production'), { method: 'POST', body: form(cases, { method: 'sensitivity', target_sensitivity: '0.9' }) });
    const body = await json(res);
    assert.equal(res.status, 201, JSON.stringify(body));
    child = body.model_version;
    calibration = body.calibration;
    const parent = await registry.resolve('pneumonia', parentVersion);
    assert.equal(child.version, parentVersion + 1);
    assert.deepEqual(child.parent, { name: 'pneumonia', version: parentVersion });
    assert.equal(child.onnx.sha256, parent.onnx!.sha256, 'same weights');
    assert.equal(child.onnx.key, parent.onnx!.key, 'content-addressed: no new bytes stored');
    assert.equal(child.source, `calibration:models:/pneumonia/${parentVersion}`);
    assert.equal(child.dataset_version, 'dv-train', 'training lineage unchanged');
    assert.equal(child.threshold, calibration.threshold);
    assert.equal(child.threshold_method, 'site-sensitivity');
    assert.equal(child.temperature, calibration.temperature);
    assert.equal(child.stage, 'None', 'not promoted unless asked');
    assert.equal(body.promotion.requested, false);

    assert.equal(calibration.data.kind, 'folder');
    assert.equal(calibration.data.manifest_sha256, manifestHash(cases), 'the folder manifest: distinct image hashes + labels');
    assert.deepEqual([calibration.data.n, calibration.data.positives, calibration.data.negatives], [80, 40, 40]);
    assert.ok(calibration.sensitivity.value >= 0.9);
    assert.ok(calibration.sensitivity.ci[0] < calibration.sensitivity.value && calibration.sensitivity.ci[1] >= calibration.sensitivity.value);
    assert.ok(calibration.auc > 0.6 && calibration.auc < 1, `overlapping classes rank imperfectly: AUC ${calibration.auc}`);
    assert.ok(calibration.nll_after <= calibration.nll_before);
    assert.equal(calibration.sample_size.sufficient, false, '40 per class cannot give ±0.05');
    assert.equal(calibration.gate_evidence.production.version, parentVersion);
    assert.equal(calibration.calibrated_by, 'local-admin');

    // The fit is reproducible from the stored per-case record.
    const stored = JSON.parse(Buffer.from(await (await fetch(`${base}/models/pneumonia/versions/${child.version}/artifacts/site-calibration.json`)).arrayBuffer()).toString('utf8'));
    assert.equal(stored.cases.length, 80);
    const refit = fitSiteCalibration(
      stored.cases.map((c: any) => (c.label === 'PNEUMONIA' ? 1 : 0)),
      stored.cases.map((c: any) => c.raw_probability),
      { method: 'sensitivity', targetSensitivity: 0.9, bootstrap: 0 },
    );
    assert.equal(refit.threshold, calibration.threshold);
    assert.equal(refit.temperature, calibration.temperature);
    // The raw outputs are the serving path's: the parent's /predict on the same image.
    const one = cases[3]!;
    const pred = await json(await fetch(`${deployment}/predict?version=${parentVersion}&model=pneumonia`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(one.data) }));
    const sha = createHash('sha256').update(one.data).digest('hex');
    assert.ok(Math.abs(stored.cases.find((c: any) => c.sha256 === sha).raw_probability - pred.probability) < 1e-7);

    const lineage = await json(await fetch(`${base}/models/pneumonia/versions/${child.version}/lineage`));
    const site = lineage.chain.find((n: any) => n.kind === 'site_data');
    assert.equal(site.id, calibration.data.manifest_sha256);
    assert.ok(lineage.chain.some((n: any) => n.kind === 'parent_model' && n.id === `pneumonia/${parentVersion}`));
    assert.ok((await json(await fetch(`${base}/models/pneumonia/versions/${child.version}/artifacts`))).artifacts.some((a: any) => a.path === 'canary.json'), "the parent's reference images travel with the child");
  });

  test('the model card shows each site calibration (JSON and Markdown), on the child and on its parent', async () => {
    const card = await json(await fetch(`${base}/models/pneumonia/versions/${child.version}/card`));
    assert.equal(card.site_calibrations.length, 1);
    const s = card.site_calibrations[0];
    assert.equal(s.this_version, true);
    assert.equal(s.data_hash, calibration.data.manifest_sha256);
    assert.deepEqual([s.n, s.threshold, s.temperature, s.method, s.by], [80, calibration.threshold, calibration.temperature, 'sensitivity', 'local-admin']);
    assert.deepEqual(s.sensitivity.ci, calibration.sensitivity.ci);
    assert.ok(card.evaluation.some((e: any) => e.split === `site ${calibration.data.manifest_sha256.slice(0, 12)}` && e.n === 80));
    assert.ok(card.limitations.some((l: string) => /fitted on the site's own 80 labelled cases/.test(l)));
    assert.match(card.threshold.how_chosen, /Site calibration/);
    const parentCard = await json(await fetch(`${base}/models/pneumonia/versions/${parentVersion}/card`));
    assert.equal(parentCard.site_calibrations.length, 1);
    assert.equal(parentCard.site_calibrations[0].this_version, false);
    const md = await (await fetch(`${base}/models/pneumonia/versions/${child.version}/card?format=markdown`)).text();
    assert.match(md, /## Site calibrations/);
    assert.match(md, new RegExp(`\\| v${child.version} \\(this\\) from v${parentVersion} \\| folder \`${calibration.data.manifest_sha256.slice(0, 16)}…\` \\| 80 \\(40/40\\) \\| sensitivity ≥ 0\\.9 \\|`));
  });

  test('the deployment serves the child with its temperature and threshold', async () => {
    for (const version of [parentVersion, child.version]) {
      const load = await fetch(`${deployment}/models/load`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'pneumonia', version: String(version), default: false }) });
      assert.equal(load.status, 200, await load.text());
    }
    for (const c of cases.slice(0, 6)) {
      const ask = async (version: number) =>
        json(await fetch(`${deployment}/predict?model=pneumonia&version=${version}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(c.data) }));
      const p = await ask(parentVersion);
      const q = await ask(child.version);
      assert.ok(Math.abs(q.probability - applyServingTemperature(p.probability, calibration.temperature)) < 1e-9, `${q.probability} vs T applied to ${p.probability}`);
      assert.equal(q.threshold, calibration.threshold);
      assert.equal(q.label, q.probability >= calibration.threshold ? 'PNEUMONIA' : 'NORMAL');
    }
    assert.notEqual(calibration.temperature, 1);
  });

  test('promotion goes through the gate on the site data, with the canary', async () => {
    // A second calibration (Youden) asked to promote: production has the same weights → same site AUC.
    const res = await fetch(calibrateUrl(String(parentVersion)), { method: 'POST', body: form(cases, { method: 'youden', promote: 'true', ci_method: 'clopper-pearson' }) });
    const body = await json(res);
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.equal(body.promotion.promoted, true, JSON.stringify(body.promotion));
    const gate = body.promotion.gate;
    assert.deepEqual(gate.basis, { kind: 'site', site_data: calibration.data.manifest_sha256, n: 80 });
    assert.equal(gate.candidate_auc, body.calibration.auc);
    assert.match(gate.message, /same weights/);
    assert.equal(gate.servability.checked, true);
    assert.equal(gate.servability.servable, true);
    assert.ok(gate.servability.reference.n === 5 && gate.servability.reference.max_abs_diff <= 1e-4, 'raw outputs still match the reference images');
    assert.match(gate.servability.checks.find((c: any) => c.name === 'contract').message, /site calibration/);
    assert.equal(body.calibration.sensitivity.method, 'clopper-pearson');
    assert.equal((await registry.resolve('pneumonia', 'production')).version, body.model_version.version);

    // Production moves to other weights (not scored on the site's cases): the first child cannot be compared → refused.
    const other = await registry.register({ name: 'pneumonia', actor: admin, source: { kind: 'upload', data: NOFEATURES, filename: 'model.onnx' }, metadata: { input_size: 16, threshold: 0.5, metrics: { auc: 0.9 } } });
    await registry.setStage({ name: 'pneumonia', version: other.version, stage: 'Production', actor: admin });
    const refused = await fetch(`${base}/models/pneumonia/stage`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version: child.version, stage: 'Production' }) });
    const rb = await json(refused);
    assert.equal(refused.status, 422, JSON.stringify(rb));
    assert.equal(rb.error.code, 'GATE_FAILED');
    assert.match(rb.error.message, new RegExp(`production version ${other.version} was not scored on this site's cases`));
  });

  test('a dataset version the data pipeline stores can be the site data', async () => {
    const dp = running.urls['data-pipeline']!;
    const siteB = await siteCases('site-b', 30);
    for (const label of ['NORMAL', 'PNEUMONIA'] as const) {
      const fd = new FormData();
      fd.append('label', label);
      for (const c of siteB.filter((x) => x.label === label)) fd.append('file', new Blob([new Uint8Array(c.data)]), c.file.split('/')[1]!);
      const r = await fetch(`${dp}/ingest`, { method: 'POST', body: fd });
      assert.equal(r.status < 300, true, await r.text());
    }
    const created = await json(await fetch(`${dp}/version/create`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'site-b', val_fraction: 0, seed: 1 }) }));
    assert.ok(created.version, JSON.stringify(created));
    const id = created.version.id;
    const res = await fetch(calibrateUrl(String(parentVersion)), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dataset_version: id, method: 'sensitivity', target_sensitivity: 0.9 }) });
    const body = await json(res);
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.equal(body.calibration.data.kind, 'dataset_version');
    assert.equal(body.calibration.data.manifest_sha256, id);
    assert.equal(body.calibration.data.n, 60);
    const tooFew = await fetch(calibrateUrl(String(parentVersion)), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dataset_version: id, min_cases: 31 }) });
    assert.equal((await json(tooFew)).error.code, 'TOO_FEW_CASES');
  });

  test('xray calibrate: folder through the gateway, manifest checked locally; errors are typed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xray-site-'));
    try {
      for (const c of cases) {
        mkdirSync(path.join(dir, c.label), { recursive: true });
        writeFileSync(path.join(dir, c.file), c.data);
      }
      const client = new ServiceClient('model-registry', running.urls.gateway!, undefined);
      const { result, text } = await calibrate(client, dir, { model: `pneumonia@${parentVersion}`, targetSensitivity: 0.95, minCases: 20 });
      assert.equal(result.calibration.data.manifest_sha256, manifestHash(cases));
      assert.match(text, new RegExp(`registered pneumonia v${result.model_version.version} \\(parent v${parentVersion}`));
      assert.match(text, /\(matches the local folder\)/);
      assert.match(text, /sensitivity {2}\d\.\d{3} \(\d+\/40; 95% CI/);
      assert.match(text, /needs about 83 PNEUMONIA/);
      assert.ok(result.calibration.sensitivity.value >= 0.95);
      await assert.rejects(calibrate(client, dir, { model: 'pneumonia@production', minCases: 50 }), (err: unknown) => err instanceof ApiError && err.status === 422 && err.code === 'TOO_FEW_CASES');
      await assert.rejects(calibrate(client, path.join(dir, 'nope'), { model: 'pneumonia' }), /neither a folder nor a dataset version id/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
