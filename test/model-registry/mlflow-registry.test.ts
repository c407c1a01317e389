import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableEngines, ENGINES, openHarness, TINY_MODEL, type Harness } from './harness.js';

/**
 * MLflow REST 2.0 model registry endpoints, called as MLflow's Python client calls them (GET with
 * query parameters, other verbs with a JSON body — DELETE included).
 */
const available = await availableEngines();

for (const engine of ENGINES) {
  describe(`MLflow model registry API (${engine})`, { skip: !available[engine] && 'PostgreSQL unreachable' }, () => {
    let h: Harness;
    before(async () => {
      h = await openHarness(engine);
    });
    after(async () => h?.close());

    const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, data: Record<string, unknown> = {}) =>
      h.app.inject(method === 'GET' ? { method, url: `/api/2.0/mlflow/${path}`, query: data as Record<string, string> } : { method, url: `/api/2.0/mlflow/${path}`, payload: data });
    const ok = async <T = any>(p: ReturnType<typeof call>): Promise<T> => {
      const res = await p;
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as T;
    };

    /** A finished run with the tiny ONNX model logged at model/model.onnx and its validation AUC. */
    async function runWithModel(auc: number): Promise<string> {
      const { run } = await ok<{ run: any }>(call('POST', 'runs/create', { experiment_id: '0', run_name: `train-${auc}` }));
      const runId = run.info.run_id as string;
      const put = await h.app.inject({ method: 'PUT', url: `/api/2.0/mlflow-artifacts/artifacts/0/${runId}/artifacts/model/model.onnx`, payload: TINY_MODEL, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(put.statusCode, 200, put.body);
      await ok(call('POST', 'runs/log-metric', { run_id: runId, key: 'val_auc', value: auc, timestamp: Date.now(), step: 0 }));
      await ok(call('POST', 'runs/update', { run_id: runId, status: 'FINISHED', end_time: Date.now() }));
      return runId;
    }

    test('registered-models/create, get, search, update, rename; MLflow errors for duplicates and unknown names', async () => {
      const created = await ok<{ registered_model: any }>(call('POST', 'registered-models/create', { name: 'pneumonia', tags: [{ key: 'task', value: 'binary' }], description: 'CXR pneumonia' }));
      const m = created.registered_model;
      assert.deepEqual(Object.keys(m).sort(), ['aliases', 'creation_timestamp', 'description', 'last_updated_timestamp', 'latest_versions', 'name', 'tags', 'user_id']);
      assert.equal(m.name, 'pneumonia');
      assert.equal(m.description, 'CXR pneumonia');
      assert.deepEqual(m.tags, [{ key: 'task', value: 'binary' }]);
      assert.deepEqual(m.latest_versions, []);
      assert.deepEqual(m.aliases, []);

      const dup = await call('POST', 'registered-models/create', { name: 'pneumonia' });
      assert.equal(dup.statusCode, 400);
      assert.deepEqual(dup.json(), { error_code: 'RESOURCE_ALREADY_EXISTS', message: 'Registered Model (name=pneumonia) already exists.' });
      const missing = await call('GET', 'registered-models/get', { name: 'nope' });
      assert.equal(missing.statusCode, 404);
      assert.deepEqual(missing.json(), { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Registered Model with name=nope not found' });
      const badName = await call('POST', 'registered-models/create', { name: '../evil' });
      assert.equal(badName.statusCode, 400);
      assert.equal(badName.json().error_code, 'INVALID_PARAMETER_VALUE');

      await ok(call('POST', 'registered-models/create', { name: 'other-model' }));
      const search = await ok<{ registered_models: any[] }>(call('GET', 'registered-models/search', { filter: "name LIKE 'pneu%'", max_results: '10' }));
      assert.deepEqual(
        search.registered_models.map((r) => r.name),
        ['pneumonia'],
      );
      const updated = await ok<{ registered_model: any }>(call('PATCH', 'registered-models/update', { name: 'other-model', description: 'scratch' }));
      assert.equal(updated.registered_model.description, 'scratch');
      const renamed = await ok<{ registered_model: any }>(call('POST', 'registered-models/rename', { name: 'other-model', new_name: 'scratch-model' }));
      assert.equal(renamed.registered_model.name, 'scratch-model');
      const clash = await call('POST', 'registered-models/rename', { name: 'scratch-model', new_name: 'pneumonia' });
      assert.equal(clash.json().error_code, 'RESOURCE_ALREADY_EXISTS');
      await ok(call('DELETE', 'registered-models/delete', { name: 'scratch-model' }));
      assert.equal((await call('GET', 'registered-models/get', { name: 'scratch-model' })).statusCode, 404);
    });

    test('model-versions/create from a runs:/ source registers the ONNX artifact; other sources make plain versions', async () => {
      const runId = await runWithModel(0.93);
      const { model_version: v1 } = await ok<{ model_version: any }>(call('POST', 'model-versions/create', { name: 'pneumonia', source: `runs:/${runId}/model`, run_id: runId }));
      assert.deepEqual(Object.keys(v1).sort(), ['aliases', 'creation_timestamp', 'current_stage', 'description', 'last_updated_timestamp', 'name', 'run_id', 'source', 'status', 'tags', 'user_id', 'version']);
      assert.equal(v1.version, '1');
      assert.equal(v1.current_stage, 'None');
      assert.equal(v1.status, 'READY');
      assert.equal(v1.run_id, runId);
      assert.equal(v1.source, `runs:/${runId}/model/model.onnx`);
      const record = await h.service.resolve('pneumonia', 1);
      assert.equal(record.onnx?.bytes, TINY_MODEL.length);
      assert.equal(record.input_size, 16);
      assert.equal(record.has_features, true);
      assert.equal(record.val_auc, 0.93, "the run's val_auc is the gate's number");

      const { model_version: v2 } = await ok<{ model_version: any }>(call('POST', 'model-versions/create', { name: 'pneumonia', source: 's3://elsewhere/model', description: 'external' }));
      assert.equal(v2.version, '2');
      assert.equal(v2.source, 's3://elsewhere/model');
      assert.equal((await h.service.resolve('pneumonia', 2)).onnx, null);

      const unknownModel = await call('POST', 'model-versions/create', { name: 'ghost', source: `runs:/${runId}/model` });
      assert.equal(unknownModel.statusCode, 404);
      assert.equal(unknownModel.json().error_code, 'RESOURCE_DOES_NOT_EXIST');

      const got = await ok<{ model_version: any }>(call('GET', 'model-versions/get', { name: 'pneumonia', version: '1' }));
      assert.deepEqual(got.model_version, v1);
      const missing = await call('GET', 'model-versions/get', { name: 'pneumonia', version: '9' });
      assert.equal(missing.statusCode, 404);
      assert.deepEqual(missing.json(), { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Model Version (name=pneumonia, version=9) not found' });

      const uri = await ok<{ artifact_uri: string }>(call('GET', 'model-versions/get-download-uri', { name: 'pneumonia', version: '1' }));
      assert.equal(uri.artifact_uri, `mlflow-artifacts:/0/${runId}/artifacts/model`);

      const patched = await ok<{ model_version: any }>(call('PATCH', 'model-versions/update', { name: 'pneumonia', version: '2', description: 'still external' }));
      assert.equal(patched.model_version.description, 'still external');
      const found = await ok<{ model_versions: any[] }>(call('GET', 'model-versions/search', { filter: `run_id = '${runId}'` }));
      assert.deepEqual(
        found.model_versions.map((v) => v.version),
        ['1'],
      );
      const all = await ok<{ model_versions: any[] }>(call('GET', 'model-versions/search', { filter: "name = 'pneumonia'" }));
      assert.deepEqual(
        all.model_versions.map((v) => v.version),
        ['2', '1'],
      );
    });

    test('aliases: set, get (registered-models/alias GET), delete with a JSON body on DELETE', async () => {
      await ok(call('POST', 'registered-models/alias', { name: 'pneumonia', alias: 'champion', version: '1' }));
      const byAlias = await ok<{ model_version: any }>(call('GET', 'registered-models/alias', { name: 'pneumonia', alias: 'champion' }));
      assert.equal(byAlias.model_version.version, '1');
      assert.deepEqual(byAlias.model_version.aliases, ['champion']);
      const model = await ok<{ registered_model: any }>(call('GET', 'registered-models/get', { name: 'pneumonia' }));
      assert.deepEqual(model.registered_model.aliases, [{ alias: 'champion', version: '1' }]);

      await ok(call('DELETE', 'registered-models/alias', { name: 'pneumonia', alias: 'champion' }));
      const gone = await call('GET', 'registered-models/alias', { name: 'pneumonia', alias: 'champion' });
      assert.equal(gone.statusCode, 404);
      assert.deepEqual(gone.json(), { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Registered model alias champion not found.' });
      const reserved = await call('POST', 'registered-models/alias', { name: 'pneumonia', alias: 'latest', version: '1' });
      assert.equal(reserved.json().error_code, 'INVALID_PARAMETER_VALUE');
    });

    test('transition-stage maps stages to the staging/production aliases and applies the promotion gate', async () => {
      const staged = await ok<{ model_version: any }>(call('POST', 'model-versions/transition-stage', { name: 'pneumonia', version: '1', stage: 'Staging', archive_existing_versions: false }));
      assert.equal(staged.model_version.current_stage, 'Staging');
      assert.deepEqual(staged.model_version.aliases, ['staging']);

      const promoted = await ok<{ model_version: any }>(call('POST', 'model-versions/transition-stage', { name: 'pneumonia', version: '1', stage: 'production', archive_existing_versions: true }));
      assert.equal(promoted.model_version.current_stage, 'Production');
      assert.deepEqual(promoted.model_version.aliases, ['production'], 'the staging alias left with the stage');

      // Version 2 has no validation AUC: the gate refuses, in MLflow's error format.
      const refused = await call('POST', 'model-versions/transition-stage', { name: 'pneumonia', version: '2', stage: 'Production', archive_existing_versions: true });
      assert.equal(refused.statusCode, 400);
      assert.equal(refused.json().error_code, 'INVALID_STATE');
      assert.match(refused.json().message, /refused: version 2 has no validation AUC recorded/);
      // The production alias also goes through the gate.
      const viaAlias = await call('POST', 'registered-models/alias', { name: 'pneumonia', alias: 'production', version: '2' });
      assert.equal(viaAlias.json().error_code, 'INVALID_STATE');

      const latest = await ok<{ model_versions: any[] }>(call('POST', 'registered-models/get-latest-versions', { name: 'pneumonia', stages: ['Production'] }));
      assert.deepEqual(
        latest.model_versions.map((v) => [v.version, v.current_stage]),
        [['1', 'Production']],
      );
      const bad = await call('POST', 'model-versions/transition-stage', { name: 'pneumonia', version: '1', stage: 'Live' });
      assert.equal(bad.json().error_code, 'INVALID_PARAMETER_VALUE');
    });

    test('model-versions/delete hides the version; registered-models/delete removes the model', async () => {
      await ok(call('DELETE', 'model-versions/delete', { name: 'pneumonia', version: '2' }));
      assert.equal((await call('GET', 'model-versions/get', { name: 'pneumonia', version: '2' })).statusCode, 404);
      const runId = await runWithModel(0.9);
      const { model_version: v3 } = await ok<{ model_version: any }>(call('POST', 'model-versions/create', { name: 'pneumonia', source: `runs:/${runId}/model/model.onnx` }));
      assert.equal(v3.version, '3', 'version numbers are never reused');
      await ok(call('DELETE', 'registered-models/delete', { name: 'pneumonia' }));
      assert.equal((await call('GET', 'registered-models/get', { name: 'pneumonia' })).json().error_code, 'RESOURCE_DOES_NOT_EXIST');
      assert.equal((await call('GET', 'model-versions/get', { name: 'pneumonia', version: '1' })).statusCode, 404);
    });
  });
}
