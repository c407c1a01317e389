import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { testConfig } from '../../src/core/config/index.js';
import { HttpDeploymentClient } from '../../src/deployment/client/index.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { TINY_MODEL } from './harness.js';

const admin = { name: 'ada', role: 'admin' as const };
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** The tiny fixture computes sigmoid(6u - 3) for mean pixel u in [0, 1]: a uniform grey g gives exactly that. */
async function canaryJson(greys: number[], shift = 0): Promise<Buffer> {
  const items = [];
  for (const g of greys) {
    const png = await sharp(Buffer.alloc(16 * 16, g), { raw: { width: 16, height: 16, channels: 1 } }).png().toBuffer();
    items.push({ png: png.toString('base64'), probability: Math.min(1, sigmoid(6 * (g / 255) - 3) + shift) });
  }
  return Buffer.from(JSON.stringify({ format: 'xray-canary/1', input_size: 16, tolerance: 1e-4, items }));
}

async function json(res: Response): Promise<any> {
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

describe('promotion gate: a version becomes Production only if the deployment can serve it', () => {
  let home: string;
  let running: RunningPlatform;
  let registry: ModelRegistryService;
  let base: string;

  const stage = (version: number, to: string, extra: Record<string, unknown> = {}) =>
    fetch(`${base}/models/pneumonia/stage`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version, stage: to, ...extra }) });
  const register = (metadata: Record<string, unknown> | null, extra: { path: string; data: Buffer }[] = []) =>
    registry.register({ name: 'pneumonia', actor: admin, source: { kind: 'upload', data: TINY_MODEL, filename: 'model.onnx' }, metadata, extraArtifacts: extra });
  // No preprocessing block: the tiny fixture's preprocessing_hash is a placeholder, so a recorded spec would (rightly) fail as train/serve skew.
  const meta = (overrides: Record<string, unknown> = {}) => ({ input_size: 16, threshold: 0.5, metrics: { auc: 0.9 }, ...overrides });

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-servable-'));
    // Registry, deployment and monitoring in one process on real sockets: the registry reaches the deployment in-process.
    running = await startPlatform({ config: testConfig(home, { XRAY_HOST: '127.0.0.1' }), services: ['model-registry', 'deployment', 'monitoring'], randomPorts: true });
    registry = new ModelRegistryService(running.platform);
    base = running.urls['model-registry']!;
  });
  after(async () => {
    await running?.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('a model whose input size differs from its recorded preprocessing is refused before the alias moves, forced or not', async () => {
    // The case: trained at one size, preprocessing recorded at another (16 vs 64 here).
    const v = await register(meta({ preprocessing: { size: 64 } }));
    const res = await stage(v.version, 'Production');
    const body = await json(res);
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.equal(body.error.code, 'NOT_SERVABLE');
    assert.match(body.error.message, /preprocessing size 64 differs from its input size 16/);
    const servability = body.error.details.verdict.servability;
    assert.equal(servability.checked, true);
    assert.equal(servability.servable, false);
    assert.equal(servability.target, 'in-process');
    assert.deepEqual(servability.checks.map((c: any) => [c.name, c.passed]), [['contract', false]]);

    const forced = await stage(v.version, 'Production', { force: true, reason: 'ship it anyway' });
    assert.equal(forced.status, 422, 'force overrides the AUC gate, never a failed canary');
    assert.equal((await json(forced)).error.code, 'NOT_SERVABLE');

    await assert.rejects(registry.resolve('pneumonia', 'production'), /production/);
    const events = (await registry.getModel('pneumonia')).stage_events.filter((e) => e.version === v.version);
    assert.ok(events.length >= 2 && events.every((e) => e.outcome === 'refused'), 'each refusal is a stage event');
    const audit = await running.platform.audit.query({ action: 'model.stage', resource: `model:pneumonia/${v.version}` });
    assert.ok(audit.items.some((r) => r.outcome === 'failure'), 'and an audit record');
    const canaries = await running.platform.audit.query({ action: 'model.canary' });
    assert.ok(canaries.items.length >= 2, 'the deployment audits its canary loads');
  });

  test('reference images must give the outputs recorded at training', async () => {
    const wrong = await register(meta(), [{ path: 'canary.json', data: await canaryJson([40, 128, 220], 0.05) }]);
    const res = await stage(wrong.version, 'Production');
    const body = await json(res);
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.equal(body.error.code, 'NOT_SERVABLE');
    assert.match(body.error.message, /3 reference images do not give the recorded outputs: max \|Δp\| 0\.05/);
  });

  test('a servable version is promoted with the canary in its verdict; the deployment then serves it', async () => {
    const v = await register(meta(), [{ path: 'canary.json', data: await canaryJson([0, 40, 128, 220, 255]) }]);
    const res = await stage(v.version, 'Production');
    const body = await json(res);
    assert.equal(res.status, 200, JSON.stringify(body));
    const s = body.gate.servability;
    assert.equal(s.checked, true);
    assert.equal(s.servable, true);
    assert.equal(s.reference.n, 5);
    assert.ok(s.reference.max_abs_diff <= 1e-4);
    assert.deepEqual(s.checks.map((c: any) => c.name), ['load', 'contract', 'warm_up', 'reference']);

    const deployment = running.urls.deployment!;
    for (let i = 0; i < 200; i++) {
      const models = (await json(await fetch(`${deployment}/models`))).models;
      if (models.some((m: any) => m.version === String(v.version) && m.default)) break;
      await new Promise((r) => setTimeout(r, 25));
      if (i === 199) assert.fail('the promoted version was not loaded');
    }
  });

  test('over HTTP: the canary route, its error envelope, and an unreachable deployment', async () => {
    const http = new HttpDeploymentClient(running.urls.deployment!);
    const prod = await registry.resolve('pneumonia', 'production');
    const report = await http.canary('pneumonia', prod.version);
    assert.equal(report.servable, true);
    await assert.rejects(http.canary('pneumonia', 999), (err: any) => err.code === 'NOT_FOUND' || err.code === 'MODEL_NOT_FOUND');

    const viaHttp = new ModelRegistryService(running.platform, { canary: async (name, version, ctx) => ({ ...(await http.canary(name, version, ctx)), target: http.target }) });
    const candidate = await register(meta({ metrics: { auc: 0.95 } }));
    const promoted = await viaHttp.setStage({ name: 'pneumonia', version: candidate.version, stage: 'Production', actor: admin });
    assert.equal(promoted.verdict?.servability?.target, running.urls.deployment);
    assert.equal(promoted.verdict?.servability?.servable, true);

    const down = new HttpDeploymentClient('http://127.0.0.1:9', { timeoutMs: 2000 });
    const unreachable = new ModelRegistryService(running.platform, { canary: (name, version, ctx) => down.canary(name, version, ctx) });
    const next = await register(meta({ metrics: { auc: 0.96 } }));
    await assert.rejects(unreachable.setStage({ name: 'pneumonia', version: next.version, stage: 'Production', actor: admin }), (err: any) => {
      assert.equal(err.code, 'SERVICE_UNAVAILABLE');
      assert.match(err.message, /could not canary-load it/);
      return true;
    });
    const forced = await unreachable.setStage({ name: 'pneumonia', version: next.version, stage: 'Production', actor: admin, force: true, reason: 'deployment down for maintenance' });
    assert.equal(forced.verdict?.servability?.checked, false);
    assert.match(forced.verdict!.servability!.message, /not checked: the deployment could not run a canary .*forced by ada/);
  });

  test('Production is never left empty without force and a reason', async () => {
    const prod = await registry.resolve('pneumonia', 'production');
    const archive = await stage(prod.version, 'Archived');
    assert.equal(archive.status, 409);
    assert.match((await json(archive)).error.message, /leaves Production empty while the deployment keeps serving it/);
    const del = await fetch(`${base}/models/pneumonia/versions/${prod.version}`, { method: 'DELETE' });
    assert.equal(del.status, 409);
    const noReason = await stage(prod.version, 'Archived', { force: true });
    assert.equal(noReason.status, 400);
    assert.equal((await registry.resolve('pneumonia', 'production')).version, prod.version, 'nothing moved');
  });

  test('a load that fails after promotion raises "model not serving", is audited, and is shown on GET /models', async () => {
    const deployment = running.urls.deployment!;
    const monitoring = running.urls.monitoring!;
    const serving = (await registry.resolve('pneumonia', 'production')).version;
    const v = await register(meta({ metrics: { auc: 0.97 } }));
    await registry.setStage({ name: 'pneumonia', version: v.version, stage: 'Staging', actor: admin });
    // The stored file goes bad between the canary and the load (a storage fault): the canary passes, the load fails.
    const record = await registry.resolve('pneumonia', v.version);
    const original = await running.platform.objects.get(record.onnx!.key);
    const objects = running.platform.objects;
    const canary = new ModelRegistryService(running.platform, {
      canary: async (name, version, ctx) => {
        const report = await running.platform.local.get<any>('deployment.client').canary(name, version, ctx);
        await objects.put(record.onnx!.key, Buffer.from('corrupted after the canary'));
        return report;
      },
    });
    await canary.setStage({ name: 'pneumonia', version: v.version, stage: 'Production', actor: admin });

    let problems: any[] = [];
    for (let i = 0; i < 200 && problems.length === 0; i++) {
      problems = (await json(await fetch(`${deployment}/models`))).problems;
      if (problems.length === 0) await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(problems.length, 1, 'GET /models names the problem');
    assert.equal(problems[0].wanted_version, String(v.version));
    assert.equal(problems[0].serving_version, String(serving), 'the previous version keeps serving');

    let alerts: any[] = [];
    for (let i = 0; i < 200 && alerts.length === 0; i++) {
      alerts = (await json(await fetch(`${monitoring}/alerts?status=active`))).items.filter((a: any) => a.rule === 'model_not_serving');
      if (alerts.length === 0) await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(alerts.length, 1, '"model not serving" fires');
    assert.equal(alerts[0].severity, 'critical');
    assert.match(alerts[0].summary, new RegExp(`could not load pneumonia version ${v.version} \\(production\\); version ${serving} keeps serving`));
    const failed = await running.platform.audit.query({ action: 'model.load', resource: 'model:pneumonia' });
    assert.ok(failed.items.some((r) => r.outcome === 'failure' && r.actor === 'system'), 'the failed load is audited');

    // Repaired: a reload of the alias serves it again and the alert resolves.
    await objects.put(record.onnx!.key, original);
    await running.platform.events.publish('model.alias_changed', { name: 'pneumonia', alias: 'production', version: v.version });
    for (let i = 0; i < 200 && alerts.length > 0; i++) {
      alerts = (await json(await fetch(`${monitoring}/alerts?status=active`))).items.filter((a: any) => a.rule === 'model_not_serving');
      if (alerts.length > 0) await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(alerts.length, 0, 'the alert resolves once the version serves');
    assert.deepEqual((await json(await fetch(`${deployment}/models`))).problems, []);
  });
});
