import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { utimes } from 'node:fs/promises';
import path from 'node:path';
import { TOPICS } from '../../src/core/events/index.js';
import { putContentAddressed } from '../../src/core/objects/index.js';
import { availableEngines, captureEvents, ENGINES, multipart, openHarness, TINY_MODEL, trainerMetadata, type Harness } from './harness.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Same graph, different bytes (a metadata value changed in place, lengths kept): a distinct artifact. */
const variant = (from: string, to: string) => Buffer.from(TINY_MODEL.toString('latin1').replaceAll(from, to), 'latin1');

const available = await availableEngines();

for (const engine of ENGINES) {
  describe(`model registry endpoints (${engine})`, { skip: !available[engine] && 'PostgreSQL unreachable' }, () => {
    let h: Harness;
    let events: Awaited<ReturnType<typeof captureEvents>>;
    before(async () => {
      h = await openHarness(engine); // promotion margin: the default 0.01
      events = await captureEvents(h.platform, [TOPICS.modelRegistered, TOPICS.modelStageChanged, TOPICS.modelAliasChanged, TOPICS.modelDeleted]);
    });
    after(async () => h?.close());

    const upload = async (name: string, model: Buffer, metadata?: Record<string, unknown>, extra: Record<string, string> = {}) => {
      const body = await multipart({ name, file: { data: model, filename: 'model.onnx' }, ...(metadata ? { metadata: JSON.stringify(metadata) } : {}), ...extra });
      return h.app.inject({ method: 'POST', url: '/models/register', ...body });
    };
    const stage = (name: string, body: object) => h.app.inject({ method: 'POST', url: `/models/${name}/stage`, payload: body });

    test('POST /models/register (multipart upload) validates the ONNX file and records what deployment needs', async () => {
      const res = await upload('pneumonia', TINY_MODEL, trainerMetadata(0.95));
      assert.equal(res.statusCode, 201, res.body);
      const v = res.json().model_version;
      assert.equal(v.name, 'pneumonia');
      assert.equal(v.version, 1);
      assert.equal(v.stage, 'None');
      assert.deepEqual(v.onnx, { key: v.onnx.key, sha256: sha256(TINY_MODEL), bytes: TINY_MODEL.length });
      assert.equal(v.source, `upload:sha256:${sha256(TINY_MODEL)}`);
      assert.equal(v.input_name, 'input');
      assert.equal(v.input_size, 16);
      assert.equal(v.has_features, true);
      assert.equal(v.threshold, 0.42);
      assert.equal(v.threshold_method, 'youden');
      assert.equal(v.preprocessing_hash, 'a'.repeat(64));
      assert.deepEqual(v.preprocessing, { size: 16, resize: 'letterbox', normalise: 'pixel/255' });
      assert.equal(v.dataset_version, 'dv-1');
      assert.equal(v.val_auc, 0.95);
      assert.deepEqual(v.metrics.confusion, { tp: 11, fp: 2, tn: 6, fn: 1 });
      assert.equal(v.metadata.classifier_weight, undefined, 'classifier weights stay inside the ONNX file');
      assert.equal(v.metadata.feature_channels, 2, 'metadata_props fill what model.json does not say');

      const files = await h.app.inject({ method: 'GET', url: '/models/pneumonia/versions/1/artifacts' });
      assert.deepEqual(
        files.json().artifacts.map((a: any) => a.path),
        ['model.json', 'model.onnx'],
      );
      const download = await h.app.inject({ method: 'GET', url: '/models/pneumonia/versions/1/artifacts/model.onnx' });
      assert.equal(download.statusCode, 200);
      assert.deepEqual(download.rawPayload, TINY_MODEL);
      assert.equal(download.headers['x-content-sha256'], sha256(TINY_MODEL));

      await events.wait();
      assert.ok(events.events.some((e) => e.topic === TOPICS.modelRegistered && e.payload.name === 'pneumonia' && e.payload.version === 1 && e.payload.onnx_sha256 === sha256(TINY_MODEL)));
      const audit = await h.platform.audit.query({ action: 'model.register', resource: 'model:pneumonia/1' });
      assert.equal(audit.items.length, 1);
      assert.equal(audit.items[0]!.outcome, 'success');
    });

    test('registration refuses files that are not servable, with a clear reason', async () => {
      const garbage = await upload('pneumonia', Buffer.from('definitely not onnx'));
      assert.equal(garbage.statusCode, 422);
      assert.equal(garbage.json().error.code, 'UNPROCESSABLE');
      assert.match(garbage.json().error.message, /not a loadable ONNX model/);

      const noProbability = await upload('pneumonia', variant('probability', 'likelihoodx'));
      assert.equal(noProbability.statusCode, 422);
      assert.match(noProbability.json().error.message, /output named 'probability'/);

      const wrongSize = await upload('pneumonia', TINY_MODEL, trainerMetadata(0.9, { input_size: 224 }));
      assert.equal(wrongSize.statusCode, 422);
      assert.match(wrongSize.json().error.message, /input size 224 does not match the model's input 16x16/);

      const noName = await h.app.inject({ method: 'POST', url: '/models/register', ...(await multipart({ file: { data: TINY_MODEL, filename: 'm.onnx' } })) });
      assert.equal(noName.statusCode, 400);
      const noFile = await h.app.inject({ method: 'POST', url: '/models/register', ...(await multipart({ name: 'pneumonia' })) });
      assert.equal(noFile.statusCode, 400);
      const badMeta = await upload('pneumonia', TINY_MODEL, undefined, { metadata: '[1,2' });
      assert.equal(badMeta.statusCode, 400);

      const failures = await h.platform.audit.query({ action: 'model.register', resource: 'model:pneumonia' });
      assert.ok(failures.items.length >= 3 && failures.items.every((r) => r.outcome === 'failure'), 'refused registrations are audited');
      const detail = await h.app.inject({ method: 'GET', url: '/models/pneumonia' });
      assert.equal(detail.json().versions.length, 1, 'nothing was registered');
    });

    test("POST /models/register (JSON) from a run's ONNX artifact picks up its model.json; lineage links run, data, code, parent", async () => {
      const tracking = h.service.tracking;
      const ctx = { actor: 'trainer' };
      const run = await tracking.createRun({ experimentId: '0', userId: 'trainer', runName: 'finetune' }, ctx);
      const runId = run.info.run_id;
      await tracking.logInputs(runId, [{ tags: [{ key: 'mlflow.data.context', value: 'training' }], dataset: { name: 'dv-2', digest: 'feedbeef', source_type: 'xray-data-pipeline', source: 'dv-2' } }], ctx);
      await tracking.logBatch(runId, { params: [{ key: 'lr', value: '0.0005' }], tags: [{ key: 'mlflow.source.git.commit', value: 'c0ffee'.padEnd(40, '0') }] }, ctx);
      await tracking.putArtifact(runId, 'model/model.onnx', variant('tiny-test', 'tiny-tesu'), ctx);
      await tracking.putArtifact(runId, 'model/model.json', Buffer.from(JSON.stringify(trainerMetadata(0.945, { dataset_version: 'dv-2', hyperparameters: { lr: 0.0005 } }))), ctx);

      const res = await h.app.inject({ method: 'POST', url: '/models/register', payload: { name: 'pneumonia', run_id: runId, artifact_path: 'model/model.onnx', parent: { name: 'pneumonia', version: 1 } } });
      assert.equal(res.statusCode, 201, res.body);
      const v = res.json().model_version;
      assert.equal(v.version, 2);
      assert.equal(v.run_id, runId);
      assert.equal(v.source, `runs:/${runId}/model/model.onnx`);
      assert.equal(v.val_auc, 0.945, 'read from the model.json beside the ONNX artifact');
      assert.equal(v.dataset_version, 'dv-2');
      assert.equal(v.code_version, 'c0ffee'.padEnd(40, '0'));
      assert.deepEqual(v.parent, { name: 'pneumonia', version: 1 });

      const lineage = (await h.app.inject({ method: 'GET', url: '/models/pneumonia/versions/2/lineage' })).json();
      assert.deepEqual(
        lineage.chain.map((n: any) => n.kind),
        ['model_version', 'run', 'dataset_version', 'preprocessing', 'code_version', 'parent_model'],
      );
      assert.equal(lineage.run.run_id, runId);
      assert.deepEqual(lineage.chain[2], { kind: 'dataset_version', id: 'dv-2', details: { digests: ['feedbeef'] } });
      assert.equal(lineage.preprocessing.hash, 'a'.repeat(64));
      assert.deepEqual(lineage.parents, [{ name: 'pneumonia', version: 1, onnx_sha256: sha256(TINY_MODEL), dataset_version: 'dv-1', deleted: false }]);

      const missingRun = await h.app.inject({ method: 'POST', url: '/models/register', payload: { name: 'pneumonia', run_id: 'a'.repeat(32), artifact_path: 'model.onnx' } });
      assert.equal(missingRun.statusCode, 404);
      const missingParent = await h.app.inject({ method: 'POST', url: '/models/register', payload: { name: 'pneumonia', run_id: runId, artifact_path: 'model', parent: { name: 'pneumonia', version: 77 } } });
      assert.equal(missingParent.statusCode, 404);

      const v1Lineage = (await h.app.inject({ method: 'GET', url: '/models/pneumonia/versions/1/lineage' })).json();
      assert.match(v1Lineage.code_version ?? '', /^[0-9a-f]{40}$/, "without a recorded commit, the registry's git HEAD is used");
    });

    test('promotion gate: passes within the margin, refuses beyond it (422, recorded), an admin may force it with a reason', async () => {
      const third = await upload('pneumonia', variant('tiny-test', 'tiny-tesv'), trainerMetadata(0.93, { hyperparameters: { lr: 0.01, batch_size: 8 } }));
      assert.equal(third.statusCode, 201, third.body);
      assert.equal(third.json().model_version.version, 3);
      events.events.length = 0;

      const first = await stage('pneumonia', { version: 1, stage: 'Production' });
      assert.equal(first.statusCode, 200, first.body);
      assert.equal(first.json().gate.passed, true);
      assert.equal(first.json().model_version.stage, 'Production');
      assert.deepEqual(first.json().model_version.aliases, ['production']);

      // 0.945 vs 0.95: 0.005 below, within 0.01.
      const second = await stage('pneumonia', { version: 2, stage: 'Production' });
      assert.equal(second.statusCode, 200, second.body);
      assert.equal(second.json().gate.passed, true);
      assert.equal(second.json().gate.production_version, 1);
      assert.deepEqual(second.json().demoted, [{ version: 1, stage: 'Archived' }]);

      // 0.93 vs 0.945: 0.015 below, beyond the margin.
      const refused = await stage('pneumonia', { version: 3, stage: 'Production' });
      assert.equal(refused.statusCode, 422);
      assert.equal(refused.json().error.code, 'GATE_FAILED');
      assert.match(refused.json().error.message, /refused: validation AUC 0\.9300 of version 3 is 0\.0150 below production version 2 \(0\.9450\), more than the allowed margin 0\.01/);
      assert.equal(refused.json().error.details.verdict.passed, false);

      const noReason = await stage('pneumonia', { version: 3, stage: 'Production', force: true });
      assert.equal(noReason.statusCode, 400);
      const forced = await stage('pneumonia', { version: 3, stage: 'Production', force: true, reason: 'INC-42: v2 misses small effusions' });
      assert.equal(forced.statusCode, 200, forced.body);
      const gate = forced.json().gate;
      assert.equal(gate.passed, false);
      assert.equal(gate.forced, true);
      assert.equal(gate.reason, 'INC-42: v2 misses small effusions');
      assert.equal(gate.decided_by, 'local-admin');

      const detail = (await h.app.inject({ method: 'GET', url: '/models/pneumonia' })).json();
      const byVersion = Object.fromEntries(detail.versions.map((v: any) => [v.version, v.stage]));
      assert.deepEqual(byVersion, { 1: 'Archived', 2: 'Archived', 3: 'Production' });
      assert.deepEqual(detail.model.aliases, [{ alias: 'production', version: 3 }]);
      assert.equal(detail.versions.find((v: any) => v.version === 3).gate.forced, true, 'the verdict is stored on the version');
      assert.deepEqual(
        detail.stage_events.map((e: any) => [e.version, e.to_stage, e.outcome, e.forced]),
        [
          [3, 'Production', 'applied', true],
          [2, 'Archived', 'applied', false],
          [3, 'Production', 'refused', false],
          [2, 'Production', 'applied', false],
          [1, 'Archived', 'applied', false],
          [1, 'Production', 'applied', false],
        ],
      );
      const automatic = detail.stage_events.find((e: any) => e.version === 2 && e.to_stage === 'Archived');
      assert.equal(automatic.reason, 'automatic: replaced by version 3', 'the automatic Production → Archived move is in the history');

      const audit = (await h.platform.audit.query({ action: 'model.stage' })).items;
      const refusedAudit = audit.find((r) => r.resource === 'model:pneumonia/3' && r.outcome === 'failure');
      assert.ok(refusedAudit, 'the refusal is audited');
      const forcedAudit = audit.find((r) => r.resource === 'model:pneumonia/3' && r.outcome === 'success');
      assert.equal(forcedAudit?.actor, 'local-admin');
      assert.equal(forcedAudit?.details?.forced, true);
      assert.equal(forcedAudit?.details?.reason, 'INC-42: v2 misses small effusions');

      await events.wait();
      const stageEvents = events.events.filter((e) => e.topic === TOPICS.modelStageChanged).map((e) => [e.payload.version, e.payload.stage]);
      assert.deepEqual(stageEvents, [
        [1, 'Production'],
        [2, 'Production'],
        [1, 'Archived'],
        [3, 'Production'],
        [2, 'Archived'],
      ]);
      const aliasEvents = events.events.filter((e) => e.topic === TOPICS.modelAliasChanged).map((e) => [e.payload.alias, e.payload.version, e.payload.previous_version]);
      assert.deepEqual(aliasEvents, [
        ['production', 1, null],
        ['production', 2, 1],
        ['production', 3, 2],
      ]);

      const staging = await stage('pneumonia', { version: 2, stage: 'Staging' });
      assert.equal(staging.statusCode, 200);
      assert.deepEqual(staging.json().model_version.aliases, ['staging']);
    });

    test('resolve() by number, alias and latest, as the deployment service calls it', async () => {
      assert.equal((await h.service.resolve('pneumonia', 'production')).version, 3);
      assert.equal((await h.service.resolve('pneumonia', 'staging')).version, 2);
      assert.equal((await h.service.resolve('pneumonia', 'latest')).version, 3);
      assert.equal((await h.service.resolve('pneumonia', 'v1')).version, 1);
      assert.equal((await h.service.resolve('pneumonia', 2)).run_id !== null, true);
      await assert.rejects(h.service.resolve('pneumonia', 'canary'), { code: 'NOT_FOUND' });
      await assert.rejects(h.service.resolve('ghost', 'production'), { code: 'NOT_FOUND' });
      const { data, artifact } = await h.service.getArtifact('pneumonia', 'production', 'model.onnx');
      assert.equal(sha256(data), artifact.sha256);
      const viaHttp = await h.app.inject({ method: 'GET', url: '/models/pneumonia/versions/production' });
      assert.equal(viaHttp.json().model_version.version, 3);
    });

    test('GET /models and GET /models/compare', async () => {
      const list = (await h.app.inject({ method: 'GET', url: '/models' })).json();
      assert.deepEqual(list.models.map((m: any) => [m.name, m.latest_version, m.production, m.staging]), [['pneumonia', 3, { version: 3, val_auc: 0.93 }, { version: 2, val_auc: 0.945 }]]);

      const res = await h.app.inject({ method: 'GET', url: '/models/compare', query: { name: 'pneumonia', versions: '1,3' } });
      assert.equal(res.statusCode, 200, res.body);
      const c = res.json();
      assert.deepEqual(
        c.versions.map((v: any) => [v.version, v.metrics.auc, v.confusion.tp, v.roc.length, v.dataset_version]),
        [
          [1, 0.95, 11, 3, 'dv-1'],
          [3, 0.93, 11, 3, 'dv-1'],
        ],
      );
      assert.deepEqual(c.params_diff, { lr: ['0.001', '0.01'] });
      assert.equal(c.metric_deltas[0].against, 1);
      assert.ok(Math.abs(c.metric_deltas[0].deltas.auc + 0.02) < 1e-9);
      assert.equal(c.versions[0].test_metrics[0].split, 'test');
      const bad = await h.app.inject({ method: 'GET', url: '/models/compare', query: { name: 'pneumonia', versions: '1;drop' } });
      assert.equal(bad.statusCode, 400);
      const unknown = await h.app.inject({ method: 'GET', url: '/models/compare', query: { name: 'pneumonia', versions: '1,99' } });
      assert.equal(unknown.statusCode, 404);
    });

    test('model card as JSON and Markdown, from what was recorded at registration', async () => {
      const card = (await h.app.inject({ method: 'GET', url: '/models/pneumonia/versions/1/card' })).json();
      assert.equal(card.model.name, 'pneumonia');
      assert.equal(card.model.architecture, 'tiny-test');
      assert.match(card.intended_use.summary, /not a diagnosis/);
      assert.deepEqual(card.data.counts_per_class, { train: { NORMAL: 30, PNEUMONIA: 70 }, val: { NORMAL: 8, PNEUMONIA: 12 } });
      assert.equal(card.data.licence, 'not recorded at registration');
      assert.deepEqual(
        card.evaluation.map((e: any) => [e.split, e.auc, e.n, e.negatives]),
        [
          ['validation', 0.95, 20, 8],
          ['test', 0.94, 30, 12],
        ],
      );
      assert.deepEqual(card.evaluation[0].auc_ci, [0.92, 0.97]);
      assert.equal(card.threshold.value, 0.42);
      assert.match(card.threshold.how_chosen, /Youden/);
      assert.ok(card.limitations.length >= 3);
      assert.deepEqual([card.training.trained_on, card.shift_evidence, card.tried], [null, null, null], 'not recorded at registration');

      const md = await h.app.inject({ method: 'GET', url: '/models/pneumonia/versions/1/card', query: { format: 'markdown' } });
      assert.equal(md.statusCode, 200);
      assert.match(String(md.headers['content-type']), /text\/markdown/);
      assert.match(md.body, /^# Model card: pneumonia v1/);
      assert.match(md.body, /\| validation \| 20 \(12\/8\) \| 0\.950 \(0\.920–0\.970\) \|/);
      assert.match(md.body, /\| train \| 30 \| 70 \|/);
      assert.match(md.body, /Youden/);
      assert.match(md.body, /- Where it was trained: not recorded\n/);
      assert.match(md.body, /## Shift evidence\n\nNot recorded\./);
      assert.match(md.body, /## What was tried\n\nNot recorded\./);
    });

    test('soft delete hides a version; hard delete (admin) removes only artifacts nothing else references; gc sweeps orphans', async () => {
      const v1 = await h.service.resolve('pneumonia', 1);
      const soft = await h.app.inject({ method: 'DELETE', url: '/models/pneumonia/versions/1' });
      assert.equal(soft.statusCode, 200, soft.body);
      assert.deepEqual(soft.json().deleted, { name: 'pneumonia', version: 1, hard: false, removed_objects: [] });
      assert.equal((await h.app.inject({ method: 'GET', url: '/models/pneumonia/versions/1' })).statusCode, 404);
      assert.ok(await h.platform.objects.exists(v1.onnx!.key), 'soft delete keeps the bytes');

      // Version 4 shares its ONNX bytes with version 1; its model.json is its own.
      const v4res = await upload('pneumonia', TINY_MODEL, trainerMetadata(0.9, { note: 'copy' }));
      const v4 = v4res.json().model_version;
      assert.equal(v4.onnx.key, v1.onnx!.key, 'content-addressed: same bytes, same object');
      const v4json = (await h.service.registry.listVersionArtifacts('pneumonia', 4)).find((a) => a.path === 'model.json')!;
      const hard = await h.app.inject({ method: 'DELETE', url: '/models/pneumonia/versions/4', query: { hard: 'true' } });
      assert.equal(hard.statusCode, 200, hard.body);
      assert.deepEqual(hard.json().deleted.removed_objects, [v4json.object_key]);
      assert.ok(await h.platform.objects.exists(v1.onnx!.key), 'still referenced by the soft-deleted version 1');
      assert.equal(await h.platform.objects.exists(v4json.object_key), false);

      const hard1 = await h.app.inject({ method: 'DELETE', url: '/models/pneumonia/versions/1', query: { hard: 'true' } });
      assert.ok(hard1.json().deleted.removed_objects.includes(v1.onnx!.key), 'now nothing references the bytes');
      assert.equal(await h.platform.objects.exists(v1.onnx!.key), false);

      await events.wait();
      assert.ok(events.events.some((e) => e.topic === TOPICS.modelDeleted && e.payload.version === 4 && e.payload.hard === true));
      const audit = await h.platform.audit.query({ action: 'model.delete' });
      assert.ok(audit.items.some((r) => r.resource === 'model:pneumonia/1' && r.details?.hard === true));

      const orphan = await putContentAddressed(h.platform.objects, 'artifacts', Buffer.from('orphan bytes'));
      // Just written: a registration may be about to reference it, so the default grace period keeps it.
      const young = await h.app.inject({ method: 'POST', url: '/artifacts/gc', payload: {} });
      assert.equal(young.statusCode, 200, young.body);
      assert.deepEqual(young.json().removed, []);
      assert.equal(young.json().kept_recent, 1);
      assert.equal(young.json().min_age_s, 3600);
      assert.ok(await h.platform.objects.exists(orphan.key));
      const dry = await h.app.inject({ method: 'POST', url: '/artifacts/gc', payload: { dry_run: true, min_age_s: 0 } });
      assert.deepEqual(dry.json().removed, [orphan.key]);
      assert.ok(await h.platform.objects.exists(orphan.key));
      const gc = await h.app.inject({ method: 'POST', url: '/artifacts/gc', payload: { min_age_s: 0 } });
      assert.deepEqual(gc.json().removed, [orphan.key]);
      assert.equal(await h.platform.objects.exists(orphan.key), false);
      const badAge = await h.app.inject({ method: 'POST', url: '/artifacts/gc', payload: { min_age_s: -1 } });
      assert.equal(badAge.statusCode, 400);

      // Old unreferenced bytes that a new registration reuses are touched, so they count as young again.
      const reused = await putContentAddressed(h.platform.objects, 'artifacts', Buffer.from('reused bytes'));
      const old = new Date(Date.now() - 2 * 3600_000);
      if (h.platform.objects.kind === 'fs') {
        await utimes(path.join(h.home, 'objects', reused.key), old, old);
        assert.deepEqual((await h.app.inject({ method: 'POST', url: '/artifacts/gc', payload: { dry_run: true } })).json().removed, [reused.key], 'old and unreferenced');
        assert.equal((await putContentAddressed(h.platform.objects, 'artifacts', Buffer.from('reused bytes'))).existed, true);
        assert.deepEqual((await h.app.inject({ method: 'POST', url: '/artifacts/gc', payload: { dry_run: true } })).json().removed, [], 'reuse renewed it');
      }
      await h.platform.objects.delete(reused.key);
      assert.ok(await h.platform.objects.exists((await h.service.resolve('pneumonia', 3)).onnx!.key), 'referenced artifacts stay');
      const runArtifacts = await h.app.inject({ method: 'POST', url: '/artifacts/gc', payload: { dry_run: true, min_age_s: 0 } });
      assert.deepEqual(runArtifacts.json().removed, [], 'run artifacts count as references');
    });
  });
}

describe('model registry roles (auth on)', () => {
  let h: Harness;
  const keys: Record<string, string> = {};
  before(async () => {
    h = await openHarness('sqlite', { XRAY_AUTH: 'on' });
    for (const role of ['viewer', 'ml-engineer', 'admin'] as const) keys[role] = (await h.platform.keys.create(`${role}-bot`, role)).key;
  });
  after(async () => h?.close());
  const as = (role: string) => ({ authorization: `Bearer ${keys[role]}` });

  test('ml-engineers register and promote; only admins force the gate, hard-delete and collect garbage', async () => {
    const body = await multipart({ name: 'pneumonia', file: { data: TINY_MODEL, filename: 'model.onnx' }, metadata: JSON.stringify(trainerMetadata(0.95)) });
    const viewer = await h.app.inject({ method: 'POST', url: '/models/register', payload: body.payload, headers: { ...body.headers, ...as('viewer') } });
    assert.equal(viewer.statusCode, 403);
    const reg = await h.app.inject({ method: 'POST', url: '/models/register', payload: body.payload, headers: { ...body.headers, ...as('ml-engineer') } });
    assert.equal(reg.statusCode, 201, reg.body);
    assert.equal(reg.json().model_version.user_id, 'ml-engineer-bot');
    const body2 = await multipart({ name: 'pneumonia', file: { data: TINY_MODEL, filename: 'model.onnx' }, metadata: JSON.stringify(trainerMetadata(0.8)) });
    await h.app.inject({ method: 'POST', url: '/models/register', payload: body2.payload, headers: { ...body2.headers, ...as('ml-engineer') } });

    const promote = (role: string, payload: object) => h.app.inject({ method: 'POST', url: '/models/pneumonia/stage', payload, headers: as(role) });
    assert.equal((await promote('ml-engineer', { version: 1, stage: 'Production' })).statusCode, 200);
    const refused = await promote('ml-engineer', { version: 2, stage: 'Production' });
    assert.equal(refused.statusCode, 422);
    const notAdmin = await promote('ml-engineer', { version: 2, stage: 'Production', force: true, reason: 'please' });
    assert.equal(notAdmin.statusCode, 403);
    assert.equal(notAdmin.json().error.code, 'FORBIDDEN');
    const forced = await promote('admin', { version: 2, stage: 'Production', force: true, reason: 'rollback drill' });
    assert.equal(forced.statusCode, 200, forced.body);
    assert.equal(forced.json().gate.decided_by, 'admin-bot');
    const denied = (await h.platform.audit.query({ action: 'model.stage' })).items.find((r) => r.outcome === 'denied');
    assert.equal(denied?.actor, 'ml-engineer-bot');

    const hardByEngineer = await h.app.inject({ method: 'DELETE', url: '/models/pneumonia/versions/1', query: { hard: 'true' }, headers: as('ml-engineer') });
    assert.equal(hardByEngineer.statusCode, 403);
    const softByEngineer = await h.app.inject({ method: 'DELETE', url: '/models/pneumonia/versions/1', headers: as('ml-engineer') });
    assert.equal(softByEngineer.statusCode, 200);
    assert.equal((await h.app.inject({ method: 'POST', url: '/artifacts/gc', payload: {}, headers: as('ml-engineer') })).statusCode, 403);
    assert.equal((await h.app.inject({ method: 'POST', url: '/artifacts/gc', payload: {}, headers: as('admin') })).statusCode, 200);
    assert.equal((await h.app.inject({ method: 'GET', url: '/models', headers: as('viewer') })).statusCode, 200);
  });

  test('a variant record (an INT8 parity gate verdict) comes only from a platform service: an API key, even an admin\'s, cannot claim a passed gate', async () => {
    const gate = {
      method: 'onnxruntime-node', split: 'val', n: 20, auc_fp32: 0.95, auc_int8: 0.95, auc_drop: 0, probability_mae: 0.001, probability_max_abs_diff: 0.01,
      limits: { max_auc_drop: 0.002, max_probability_mae: 0.01 }, passed: true, message: 'passed',
    };
    const claim = trainerMetadata(0.95, { variant: { kind: 'int8', of: { name: 'forged', version: 1 }, gate } });
    const body = await multipart({ name: 'forged', file: { data: TINY_MODEL, filename: 'model.onnx' }, metadata: JSON.stringify(claim) });
    for (const role of ['ml-engineer', 'admin']) {
      const res = await h.app.inject({ method: 'POST', url: '/models/register', payload: body.payload, headers: { ...body.headers, ...as(role) } });
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().error.code, 'FORBIDDEN');
      assert.match(res.json().error.message, /only the training service may register one/);
    }
    assert.equal((await h.app.inject({ method: 'GET', url: '/models/forged', headers: as('admin') })).statusCode, 404, 'nothing was written');
    const refusals = (await h.platform.audit.query({ action: 'model.register' })).items.filter((r) => r.resource === 'model:forged' && r.outcome === 'failure');
    assert.equal(refusals.length, 2);
    // The training service's own call (its service token beside the user's key) registers it.
    const service = await h.platform.transport.identityHeaders('model-registry');
    assert.ok(Object.keys(service).length, 'the platform signs service tokens');
    const byService = await h.app.inject({ method: 'POST', url: '/models/register', payload: body.payload, headers: { ...body.headers, ...as('ml-engineer'), ...service } });
    assert.equal(byService.statusCode, 201, byService.body);
    assert.deepEqual(byService.json().model_version.metadata.variant.gate, gate);
    // A bare "int8" marker (what the trainer writes into the INT8 file itself) is no record: it registers, unservable.
    const marker = await multipart({ name: 'forged', file: { data: TINY_MODEL, filename: 'model.onnx' }, metadata: JSON.stringify(trainerMetadata(0.95, { variant: 'int8' })) });
    assert.equal((await h.app.inject({ method: 'POST', url: '/models/register', payload: marker.payload, headers: { ...marker.headers, ...as('ml-engineer') } })).statusCode, 201);
  });
});
