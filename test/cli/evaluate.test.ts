import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { loadConfig, testConfig } from '../../src/core/config/index.js';
import { findShifts, generateDataset, type SyntheticDataset } from '../../src/core/imaging/index.js';
import { evaluateBinary } from '../../src/core/ml/index.js';
import { sha256Hex } from '../../src/core/objects/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { createVersion, dataContext, ingestFile } from '../../src/data-pipeline/service/index.js';
import { buildDataPipelineApp } from '../../src/data-pipeline/app.js';
import { buildDeploymentApp } from '../../src/deployment/app.js';
import { buildGatewayApp } from '../../src/gateway/app.js';
import { buildModelRegistryApp } from '../../src/model-registry/app.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { ApiError, ServiceClient } from '../../src/cli/client.js';
import { evaluateModel, parseModelRef, type EvaluationOptions } from '../../src/cli/evaluation.js';
import { ApiDatasetReader, ApiEvaluationScorer } from '../../src/cli/evaluation-api.js';
import { OnnxFileScorer } from '../../src/cli/evaluation-onnx.js';
import { evaluationOptions, formatReport, requestedShifts } from '../../src/cli/commands/evaluate.js';
import { IMAGE_SHIFTS } from '../../src/core/imaging/index.js';
import { PROJECT_ROOT, spawnNode } from '../helpers/process.js';

const TINY_MODEL = path.resolve(import.meta.dirname, '../fixtures/tiny-model.onnx');
/** Stored with the registered version; the tiny model's probabilities on these images straddle it. */
const THRESHOLD = 0.33;
const BOOTSTRAP = 200;
const METRIC_KEYS = ['n', 'positives', 'auc', 'auc_ci', 'accuracy', 'sensitivity', 'specificity', 'ppv', 'npv', 'f1', 'threshold', 'confusion'] as const;

/** Probabilities of every image of the folder from the deployment service's POST /predict. */
async function servedProbabilities(app: FastifyInstance, key: string, dir: string, files: SyntheticDataset['files']): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const f of files) {
    const res = await app.inject({ method: 'POST', url: '/predict', payload: readFileSync(path.join(dir, f.path)), headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${key}` } });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.model.version, '1');
    assert.equal(body.threshold, THRESHOLD);
    out.set(f.path, body.probability);
  }
  return out;
}

async function waitForProduction(app: FastifyInstance, key: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const models = (await app.inject({ method: 'GET', url: '/models', headers: { authorization: `Bearer ${key}` } })).json().models as { name: string; version: string }[];
    if (models.some((m) => m.name === 'pneumonia' && m.version === '1')) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail('the deployment service did not load pneumonia v1');
}

function pick(r: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(METRIC_KEYS.map((k) => [k, r[k]]));
}

/** Equal up to float noise in the probabilities (the same ONNX session, batched differently). */
function assertMetricsClose(actual: Record<string, unknown>, expected: Record<string, unknown>): void {
  assert.deepEqual(actual.confusion, expected.confusion);
  for (const k of METRIC_KEYS) {
    const a = actual[k];
    const e = expected[k];
    if (Array.isArray(e)) (e as number[]).forEach((v, i) => assert.ok(Math.abs((a as number[])[i]! - v) < 1e-9, `${k}[${i}]: ${String(a)} vs ${String(e)}`));
    else if (typeof e === 'number') assert.ok(Math.abs((a as number) - e) < 1e-9, `${k}: ${String(a)} vs ${e}`);
    else assert.deepEqual(a, e, k);
  }
}

describe('xray evaluate: labelled images through the serving path, over the platform API', () => {
  let home: string;
  let dataDir: string;
  let dataset: SyntheticDataset;
  let platform: Platform;
  let apps: FastifyInstance[] = [];
  let gatewayUrl: string;
  let engineerKey: string;
  let viewerKey: string;
  let expected: ReturnType<typeof evaluateBinary>;
  let served: Map<string, number>;

  /** A registered version scored by the deployment through the gateway, with the engineer's key. */
  async function evaluateVersion(options: EvaluationOptions) {
    const client = (service: 'model-registry' | 'deployment' | 'data-pipeline') => new ServiceClient(service, gatewayUrl, engineerKey);
    const api = { registry: client('model-registry'), deployment: client('deployment'), data: client('data-pipeline') };
    assert.equal(options.model.kind, 'registry');
    const scorer = await ApiEvaluationScorer.open(api, options.model as { name: string; ref: string });
    return evaluateModel(scorer, options, new ApiDatasetReader(api.data));
  }

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-evaluate-'));
    dataDir = path.join(home, 'site');
    dataset = await generateDataset(dataDir, { perClass: 10, seed: 5, size: 64 });
    writeFileSync(path.join(dataDir, 'NORMAL', 'IM-9999-0001.jpeg'), 'not an image at all');
    writeFileSync(path.join(dataDir, 'PNEUMONIA', 'notes.txt'), 'a stray file');
    platform = await openPlatform(testConfig(home, { XRAY_PROMOTION_CANARY: 'off', XRAY_AUTH: 'on' }));
    engineerKey = (await platform.keys.create('site-engineer', 'ml-engineer')).key;
    viewerKey = (await platform.keys.create('ward-viewer', 'viewer')).key;
    // The three services the evaluation calls, each listening, behind a gateway.
    const registryApp = await buildModelRegistryApp(platform);
    const dataApp = await buildDataPipelineApp(platform);
    const deploymentApp = await buildDeploymentApp(platform);
    apps = [registryApp, dataApp, deploymentApp];
    const urls = await Promise.all(apps.map((a) => a.listen({ port: 0, host: '127.0.0.1' })));
    const registry = new ModelRegistryService(platform);
    const actor = { name: 'tester', role: 'admin' as const };
    await registry.register({
      name: 'pneumonia',
      actor,
      source: { kind: 'upload', data: readFileSync(TINY_MODEL) },
      metadata: { threshold: THRESHOLD, threshold_method: 'youden', metrics: { auc: 0.81, auc_ci: [0.7, 0.9], sensitivity: 0.8, specificity: 0.7 }, dataset_version: 'dv-test' },
    });
    await registry.setStage({ name: 'pneumonia', version: 1, stage: 'Production', actor });
    const config = loadConfig({ XRAY_HOME: home, XRAY_LOG_LEVEL: 'silent', XRAY_WEB_DIR: path.join(home, 'no-web'), XRAY_SERVICE_URLS: `model-registry=${urls[0]},data-pipeline=${urls[1]},deployment=${urls[2]}` });
    const gateway = await buildGatewayApp(config, platform.logger);
    apps.push(gateway);
    gatewayUrl = await gateway.listen({ port: 0, host: '127.0.0.1' });

    // The reference: the deployment service's own /predict answers, scored independently.
    await waitForProduction(deploymentApp, engineerKey);
    served = await servedProbabilities(deploymentApp, engineerKey, dataDir, dataset.files);
    const files = [...dataset.files].sort((a, b) => (a.path < b.path ? -1 : 1));
    expected = evaluateBinary(
      files.map((f) => (f.label === 'PNEUMONIA' ? 1 : 0)),
      files.map((f) => served.get(f.path)!),
      { threshold: THRESHOLD, bootstrap: BOOTSTRAP, seed: 0 },
    );
    assert.ok(expected.confusion.tp > 0 && expected.confusion.tn > 0 && expected.confusion.fp + expected.confusion.fn > 0, 'a non-trivial operating point');
  });
  after(async () => {
    for (const app of apps.reverse()) await app.close();
    await platform?.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('through the API: metrics equal evaluateBinary on the served probabilities; bad files are listed, not fatal', async () => {
    const { report, reference } = await evaluateVersion({
      model: { kind: 'registry', ...parseModelRef('pneumonia@production') },
      source: { kind: 'folder', dir: dataDir },
      bootstrap: BOOTSTRAP,
      reference: true,
    });
    assertMetricsClose(pick(report as unknown as Record<string, unknown>), pick(expected as unknown as Record<string, unknown>));
    for (const p of report.predictions) assert.ok(Math.abs(p.probability - served.get(p.file)!) < 1e-6, p.file);
    assert.equal(report.model.version, '1');
    assert.equal(report.model.alias, 'production');
    assert.equal(report.model.threshold_source, 'registry');
    assert.equal(report.model.source.uri, 'models:/pneumonia/1');
    assert.equal(report.model.sha256, sha256Hex(readFileSync(TINY_MODEL)));
    assert.equal(report.model.recorded?.val_auc, 0.81);
    assert.deepEqual(report.counts, { images: 21, evaluated: 20, failed: 1, skipped: 1, available: 21, per_class: { NORMAL: { found: 11, evaluated: 10 }, PNEUMONIA: { found: 10, evaluated: 10 } } });
    assert.deepEqual(
      report.failures.map((f) => [f.file, f.code]),
      [
        ['NORMAL/IM-9999-0001.jpeg', 'UNSUPPORTED_MEDIA_TYPE'],
        ['PNEUMONIA/notes.txt', 'UNSUPPORTED_MEDIA_TYPE'],
      ],
    );
    // The drift reference is in the space of the served predictions: stats and a 64-d embedding per image.
    assert.ok(reference);
    assert.equal(reference.probabilities.length, 20);
    assert.equal(reference.stats.length, 20);
    assert.equal(reference.embeddings.length, 20);
    assert.equal(reference.embeddings[0]!.length, 64);
    assert.equal(reference.threshold, THRESHOLD);
    const text = formatReport(report);
    assert.match(text, /^AUC {10}\d\.\d{4} {2}\(95% CI \d\.\d{4}–\d\.\d{4}, 200 bootstrap resamples\)$/m);
    assert.match(text, new RegExp(`^ {2}true NORMAL\\s+${expected.confusion.tn}\\s+${expected.confusion.fp}$`, 'm'));
    assert.match(text, /NORMAL\/IM-9999-0001\.jpeg: UNSUPPORTED_MEDIA_TYPE/);
    // Scored by the deployment as the caller (audited), never recorded as predictions.
    await platform.audit.flush();
    const audit = await platform.audit.query({ action: 'model.score' });
    assert.ok(audit.items.some((a) => a.actor === 'site-engineer' && a.resource === 'model:pneumonia/1'));
    assert.equal((await platform.database.db.selectFrom('predictions').select(({ fn }) => fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n, 20, 'only the /predict calls of the reference');
  });

  test("the caller's key decides: a viewer may not evaluate", async () => {
    const client = (service: 'model-registry' | 'deployment' | 'data-pipeline') => new ServiceClient(service, gatewayUrl, viewerKey);
    const api = { registry: client('model-registry'), deployment: client('deployment'), data: client('data-pipeline') };
    const scorer = await ApiEvaluationScorer.open(api, { name: 'pneumonia', ref: 'production' });
    await assert.rejects(evaluateModel(scorer, { model: { kind: 'registry', name: 'pneumonia', ref: 'production' }, source: { kind: 'folder', dir: dataDir }, bootstrap: 0 }), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 403);
      assert.equal(err.code, 'FORBIDDEN');
      return true;
    });
  });

  test('--limit takes a seeded subset; --onnx evaluates a file outside the registry with its own threshold', async () => {
    const run = async () => {
      const scorer = await OnnxFileScorer.open(TINY_MODEL, platform.logger);
      try {
        return await evaluateModel(scorer, { model: { kind: 'onnx', path: TINY_MODEL }, source: { kind: 'folder', dir: dataDir }, limit: 8, seed: 3, bootstrap: 0 });
      } finally {
        await scorer.close();
      }
    };
    const a = await run();
    const b = await run();
    assert.equal(a.report.counts.images, 8);
    assert.equal(a.report.counts.available, 21);
    assert.deepEqual(a.report.predictions.map((p) => p.file), b.report.predictions.map((p) => p.file));
    assert.equal(a.report.model.source.kind, 'file');
    assert.equal(a.report.model.threshold, 0.5, "the file's metadata threshold");
    assert.equal(a.report.model.threshold_source, 'onnx-metadata');
    assert.equal(a.report.auc_ci, null, 'bootstrap 0 gives no interval');
  });

  test('--dataset evaluates the stored originals of one split of a dataset version', async () => {
    const ctx = dataContext(platform);
    for (const f of dataset.files) {
      const r = await ingestFile(ctx, { bytes: readFileSync(path.join(dataDir, f.path)), fileName: path.basename(f.path), label: f.label, patientId: f.patientId, actor: 'test' });
      assert.notEqual(r.status, 'rejected');
    }
    const { version } = await createVersion(ctx, { name: 'eval', preprocessing: { size: 64 }, valFraction: 0.4, testFraction: 0, seed: 1 }, 'test');
    const { report } = await evaluateVersion({ model: { kind: 'registry', name: 'pneumonia', ref: '1' }, source: { kind: 'dataset', version: version.id, split: 'val' }, bootstrap: 0 });
    const valCount = version.counts.val.NORMAL + version.counts.val.PNEUMONIA;
    assert.ok(valCount > 0 && valCount < 20);
    assert.equal(report.n, valCount);
    assert.equal(report.model.alias, null, 'loaded by version number');
    assert.ok(report.predictions.every((p) => p.file.startsWith(`val/${p.label}/`)));
    // The stored bytes are the uploaded ones, so each probability is the one /predict gave for the file.
    const servedByHash = new Map(dataset.files.map((f) => [sha256Hex(readFileSync(path.join(dataDir, f.path))), served.get(f.path)!]));
    for (const p of report.predictions) {
      const hash = p.file.split('/')[2]!;
      assert.ok(Math.abs(p.probability - servedByHash.get(hash)!) < 1e-6, p.file);
    }
    // A shift needs the bytes: they come from the data pipeline's API and are uploaded shifted.
    const shifted = await evaluateVersion({ model: { kind: 'registry', name: 'pneumonia', ref: '1' }, source: { kind: 'dataset', version: version.id, split: 'val' }, bootstrap: 0, shift: findShifts(['exposure -20%'])[0]! });
    assert.equal(shifted.report.n, valCount);
  });

  test('a shift alters every file before the serving path; the report names it', async () => {
    const shift = findShifts(['exposure -20%'])[0]!;
    const { report } = await evaluateVersion({ model: { kind: 'registry', name: 'pneumonia', ref: '1' }, source: { kind: 'folder', dir: dataDir }, bootstrap: 0, shift });
    assert.deepEqual(report.shift, { name: 'exposure -20%', description: shift.description });
    assert.equal(report.counts.evaluated, 20);
    assert.equal(report.counts.failed, 1, 'the corrupt file still fails, with its own error');
    const moved = report.predictions.filter((p) => Math.abs(p.probability - served.get(p.file)!) > 1e-4);
    assert.ok(moved.length > 10, `darker images change the probabilities (${moved.length}/20 moved)`);
  });

  test('argument checks', () => {
    assert.throws(() => evaluationOptions('x', {}), /exactly one of --model/);
    assert.throws(() => evaluationOptions('x', { model: 'a', onnx: 'b' }), /exactly one of --model/);
    assert.throws(() => evaluationOptions(undefined, { model: 'a' }), /either a folder/);
    assert.throws(() => evaluationOptions('x', { model: 'a', split: 'val', dataset: 'd' }), /either a folder/);
    assert.throws(() => evaluationOptions(undefined, { model: 'a', dataset: 'd', split: 'holdout' }), /--split must be one of/);
    assert.throws(() => evaluationOptions('x', { model: 'a', limit: '0' }), /--limit must be an integer/);
    assert.throws(() => parseModelRef('pneumonia@'), /name@alias/);
    assert.throws(() => requestedShifts({ shifts: ['gamma 0.7', 'sepia'] }), /unknown shift\(s\) 'sepia'/);
    assert.equal(requestedShifts({ shifts: true }).length, IMAGE_SHIFTS.length);
    assert.deepEqual(requestedShifts({ shifts: ['gamma 0.7,crop 90%'] }).map((x) => x.name), ['gamma 0.7', 'crop 90%']);
    assert.deepEqual(requestedShifts({}), []);
    assert.deepEqual(parseModelRef('pneumonia'), { name: 'pneumonia', ref: 'production' });
    assert.deepEqual(parseModelRef('pneumonia@3'), { name: 'pneumonia', ref: '3' });
    assert.deepEqual(evaluationOptions(undefined, { model: 'p@staging', dataset: 'abc' }).source, { kind: 'dataset', version: 'abc', split: 'val' });
  });

  test('the command: printed summary, JSON report and a valid ROC PNG', async () => {
    const out = path.join(home, 'out', 'report.json');
    const roc = path.join(home, 'out', 'roc.png');
    const run = spawnNode(
      ['--import', 'tsx', path.join(PROJECT_ROOT, 'src/cli/index.ts'), 'evaluate', '--model', 'pneumonia@production', dataDir, '--out', out, '--roc', roc, '--bootstrap', String(BOOTSTRAP), '--shifts', 'gamma 0.7,JPEG q20'],
      // No XRAY_HOME of the platform's: the command reaches it only through the gateway.
      { XRAY_URL: gatewayUrl, XRAY_API_KEY: engineerKey, XRAY_HOME: path.join(home, 'elsewhere'), XRAY_LOG_LEVEL: 'silent' },
    );
    const { code } = await run.exited;
    const printed = run.output();
    assert.equal(code, 0, printed);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.report, 'xray-evaluation/1');
    assertMetricsClose(pick(report), pick(expected as unknown as Record<string, unknown>));
    assert.equal(report.failures.length, 2);
    // --shifts: the robustness table, first row the unshifted set, at the stored threshold.
    assert.deepEqual(report.robustness.map((r: { shift: string }) => r.shift), ['none', 'gamma 0.7', 'JPEG q20']);
    assert.equal(report.robustness[0].auc, report.auc);
    assert.ok(report.robustness.every((r: { threshold: number; n: number }) => r.threshold === THRESHOLD && r.n === 20));
    assert.match(printed, /^\| shift \| n \| AUC \(95% CI\) \| sensitivity \| specificity \| accuracy \|$/m);
    assert.match(printed, /^\| JPEG q20 \| 20 \(1 failed\) \| \d\.\d{4} \(\d\.\d{3}–\d\.\d{3}\) \([+−]\d\.\d{3}\) \|/m);
    assert.match(printed, /^model {8}pneumonia v1 \(production\)/m);
    assert.match(printed, new RegExp(`^AUC {10}${expected.auc!.toFixed(4)} {2}\\(95% CI ${expected.auc_ci![0].toFixed(4)}–${expected.auc_ci![1].toFixed(4)}`, 'm'));
    assert.match(printed, new RegExp(`^sensitivity  ${expected.sensitivity.toFixed(4)} `, 'm'));
    assert.match(printed, new RegExp(`^specificity  ${expected.specificity.toFixed(4)} `, 'm'));
    assert.match(printed, new RegExp(`^ {2}true PNEUMONIA\\s+${expected.confusion.fn}\\s+${expected.confusion.tp}$`, 'm'));
    assert.match(printed, /recorded at registration \(validation of dv-test\): AUC 0\.8100/);
    const meta = await sharp(readFileSync(roc)).metadata();
    assert.equal(meta.format, 'png');
    assert.ok(meta.width! >= 120 && meta.height! >= 120);
  });
});
