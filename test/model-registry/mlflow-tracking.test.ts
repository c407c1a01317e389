import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableEngines, ENGINES, openHarness, type Harness } from './harness.js';

/**
 * MLflow REST 2.0 tracking endpoints, called with the JSON an MLflow client sends (shapes from
 * MLflow's REST API reference; int64 fields as the protobuf JSON printer writes them, i.e. strings).
 */
const available = await availableEngines();

for (const engine of ENGINES) {
  describe(`MLflow tracking API (${engine})`, { skip: !available[engine] && 'PostgreSQL unreachable' }, () => {
    let h: Harness;
    before(async () => {
      h = await openHarness(engine);
    });
    after(async () => h?.close());

    const post = async (path: string, body: unknown) => h.app.inject({ method: 'POST', url: `/api/2.0/mlflow/${path}`, payload: body as object });
    const get = async (path: string, query: Record<string, string | string[]>) => h.app.inject({ method: 'GET', url: `/api/2.0/mlflow/${path}`, query });
    const ok = async <T = any>(p: Promise<{ statusCode: number; json(): any; body: string }>): Promise<T> => {
      const res = await p;
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as T;
    };
    const newRun = async (experimentId: string, name: string) =>
      (await ok<{ run: any }>(post('runs/create', { experiment_id: experimentId, run_name: name, start_time: Date.now(), tags: [] }))).run.info.run_id as string;

    test('experiments/create, get, get-by-name answer MLflow shapes; duplicates and unknown ids get MLflow error codes', async () => {
      const created = await ok<{ experiment_id: string }>(post('experiments/create', { name: 'pneumonia-baseline', tags: [{ key: 'team', value: 'radiology' }] }));
      assert.match(created.experiment_id, /^\d+$/);
      const { experiment } = await ok<{ experiment: any }>(get('experiments/get', { experiment_id: created.experiment_id }));
      assert.deepEqual(Object.keys(experiment).sort(), ['artifact_location', 'creation_time', 'experiment_id', 'last_update_time', 'lifecycle_stage', 'name', 'tags']);
      assert.equal(experiment.name, 'pneumonia-baseline');
      assert.equal(experiment.lifecycle_stage, 'active');
      assert.equal(experiment.artifact_location, `mlflow-artifacts:/${created.experiment_id}`);
      assert.deepEqual(experiment.tags, [{ key: 'team', value: 'radiology' }]);
      assert.equal(typeof experiment.creation_time, 'number');

      const byName = await ok<{ experiment: any }>(get('experiments/get-by-name', { experiment_name: 'pneumonia-baseline' }));
      assert.equal(byName.experiment.experiment_id, created.experiment_id);

      const dup = await post('experiments/create', { name: 'pneumonia-baseline' });
      assert.equal(dup.statusCode, 400);
      assert.deepEqual(dup.json(), { error_code: 'RESOURCE_ALREADY_EXISTS', message: 'Experiment(name=pneumonia-baseline) already exists.' });

      const missing = await get('experiments/get', { experiment_id: '123456' });
      assert.equal(missing.statusCode, 404);
      assert.deepEqual(missing.json(), { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'No Experiment with id=123456 exists' });

      const missingName = await get('experiments/get-by-name', { experiment_name: 'nope' });
      assert.equal(missingName.statusCode, 404);
      assert.equal(missingName.json().error_code, 'RESOURCE_DOES_NOT_EXIST');

      const noName = await post('experiments/create', {});
      assert.equal(noName.statusCode, 400);
      assert.equal(noName.json().error_code, 'INVALID_PARAMETER_VALUE');

      const search = await ok<{ experiments: any[] }>(post('experiments/search', { max_results: 10, filter: "name LIKE 'pneumonia%'" }));
      assert.deepEqual(
        search.experiments.map((e) => e.name),
        ['pneumonia-baseline'],
      );
      const all = await ok<{ experiments: any[] }>(get('experiments/search', { max_results: '100' }));
      assert.ok(all.experiments.some((e) => e.experiment_id === '0' && e.name === 'Default'), 'the Default experiment exists');
    });

    test('runs/create and runs/get with the Python client body (int64 as strings, mlflow.* tags)', async () => {
      const body = {
        experiment_id: '0',
        user_id: 'alice',
        start_time: '1690000000000',
        tags: [
          { key: 'mlflow.user', value: 'alice' },
          { key: 'mlflow.source.name', value: 'train.py' },
          { key: 'mlflow.source.type', value: 'LOCAL' },
          { key: 'mlflow.runName', value: 'bold-fox-42' },
        ],
        run_name: 'bold-fox-42',
      };
      const { run } = await ok<{ run: any }>(post('runs/create', body));
      assert.deepEqual(Object.keys(run).sort(), ['data', 'info', 'inputs']);
      assert.deepEqual(Object.keys(run.info).sort(), ['artifact_uri', 'experiment_id', 'lifecycle_stage', 'run_id', 'run_name', 'run_uuid', 'start_time', 'status', 'user_id']);
      assert.match(run.info.run_id, /^[0-9a-f]{32}$/);
      assert.equal(run.info.run_uuid, run.info.run_id);
      assert.equal(run.info.experiment_id, '0');
      assert.equal(run.info.run_name, 'bold-fox-42');
      assert.equal(run.info.user_id, 'alice');
      assert.equal(run.info.status, 'RUNNING');
      assert.equal(run.info.start_time, 1690000000000);
      assert.equal(run.info.lifecycle_stage, 'active');
      assert.equal(run.info.artifact_uri, `mlflow-artifacts:/0/${run.info.run_id}/artifacts`);
      assert.deepEqual(run.data, {
        metrics: [],
        params: [],
        tags: [
          { key: 'mlflow.runName', value: 'bold-fox-42' },
          { key: 'mlflow.source.name', value: 'train.py' },
          { key: 'mlflow.source.type', value: 'LOCAL' },
          { key: 'mlflow.user', value: 'alice' },
        ],
      });
      assert.deepEqual(run.inputs, { dataset_inputs: [] });

      const fetched = await ok<{ run: any }>(get('runs/get', { run_id: run.info.run_id }));
      assert.deepEqual(fetched.run, run);
      const legacy = await ok<{ run: any }>(get('runs/get', { run_uuid: run.info.run_id }));
      assert.equal(legacy.run.info.run_id, run.info.run_id);

      const missing = await get('runs/get', { run_id: 'f'.repeat(32) });
      assert.equal(missing.statusCode, 404);
      assert.deepEqual(missing.json(), { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Run with id=${'f'.repeat(32)} not found` });

      const badExperiment = await post('runs/create', { experiment_id: '999' });
      assert.equal(badExperiment.statusCode, 404);
      assert.equal(badExperiment.json().error_code, 'RESOURCE_DOES_NOT_EXIST');
    });

    test('log-metric, log-parameter, set-tag, log-batch and get-history; params are immutable', async () => {
      const runId = await newRun('0', 'logging');
      await ok(post('runs/log-metric', { run_id: runId, key: 'val_auc', value: 0.81, timestamp: '1552550804000', step: '0' }));
      await ok(post('runs/log-metric', { run_id: runId, key: 'val_auc', value: 0.88, timestamp: 1552550805000, step: 1 }));
      await ok(post('runs/log-metric', { run_uuid: runId, key: 'val_auc', value: 0.86, timestamp: 1552550806000, step: 2 }));
      await ok(post('runs/log-metric', { run_id: runId, key: 'loss', value: 'NaN', timestamp: 1552550806000, step: 0 }));
      await ok(post('runs/log-parameter', { run_id: runId, key: 'model', value: 'densenet121' }));
      await ok(post('runs/set-tag', { run_id: runId, key: 'stage', value: 'dev' }));
      // The log-batch example of MLflow's REST reference.
      await ok(
        post('runs/log-batch', {
          run_id: runId,
          metrics: [
            { key: 'mae', value: 2.5, timestamp: 1552550804 },
            { key: 'rmse', value: 2.7, timestamp: 1552550804 },
          ],
          params: [{ key: 'model_class', value: 'LogisticRegression' }],
        }),
      );

      const { run } = await ok<{ run: any }>(get('runs/get', { run_id: runId }));
      assert.deepEqual(run.data.metrics, [
        { key: 'loss', value: 'NaN', timestamp: 1552550806000, step: 0 },
        { key: 'mae', value: 2.5, timestamp: 1552550804, step: 0 },
        { key: 'rmse', value: 2.7, timestamp: 1552550804, step: 0 },
        { key: 'val_auc', value: 0.86, timestamp: 1552550806000, step: 2 },
      ]);
      assert.deepEqual(run.data.params, [
        { key: 'model', value: 'densenet121' },
        { key: 'model_class', value: 'LogisticRegression' },
      ]);
      assert.ok(run.data.tags.some((t: any) => t.key === 'stage' && t.value === 'dev'));

      const history = await ok<{ metrics: any[] }>(get('metrics/get-history', { run_id: runId, metric_key: 'val_auc' }));
      assert.deepEqual(
        history.metrics.map((m) => [m.step, m.value]),
        [
          [0, 0.81],
          [1, 0.88],
          [2, 0.86],
        ],
      );

      const same = await post('runs/log-parameter', { run_id: runId, key: 'model', value: 'densenet121' });
      assert.equal(same.statusCode, 200, 'logging the same value again is fine');
      const changed = await post('runs/log-parameter', { run_id: runId, key: 'model', value: 'resnet18' });
      assert.equal(changed.statusCode, 400);
      assert.equal(changed.json().error_code, 'INVALID_PARAMETER_VALUE');
      assert.match(changed.json().message, /Changing param values is not allowed/);

      const badValue = await post('runs/log-metric', { run_id: runId, key: 'x', value: 'abc', timestamp: 1 });
      assert.equal(badValue.statusCode, 400);
      assert.equal(badValue.json().error_code, 'INVALID_PARAMETER_VALUE');
      const badKey = await post('runs/log-metric', { run_id: runId, key: '../etc', value: 1, timestamp: 1 });
      assert.equal(badKey.statusCode, 400);
      assert.equal(badKey.json().error_code, 'INVALID_PARAMETER_VALUE');
    });

    test("runs/log-batch enforces MLflow's limits: 1000 metrics, 100 params, 100 tags", async () => {
      const runId = await newRun('0', 'limits');
      const metrics = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `m${i % 20}`, value: i / n, timestamp: 1700000000000 + i, step: Math.floor(i / 20) }));
      await ok(post('runs/log-batch', { run_id: runId, metrics: metrics(1000) }));
      const cases: [string, object, RegExp][] = [
        ['metrics', { metrics: metrics(1001) }, /at most 1000 metrics\. Got 1001 metrics/],
        ['params', { params: Array.from({ length: 101 }, (_, i) => ({ key: `p${i}`, value: 'v' })) }, /at most 100 params\. Got 101 params/],
        ['tags', { tags: Array.from({ length: 101 }, (_, i) => ({ key: `t${i}`, value: 'v' })) }, /at most 100 tags\. Got 101 tags/],
      ];
      for (const [what, body, message] of cases) {
        const res = await post('runs/log-batch', { run_id: runId, ...body });
        assert.equal(res.statusCode, 400, what);
        assert.equal(res.json().error_code, 'INVALID_PARAMETER_VALUE', what);
        assert.match(res.json().message, message);
      }
      const history = await ok<{ metrics: any[] }>(get('metrics/get-history', { run_id: runId, metric_key: 'm3' }));
      assert.equal(history.metrics.length, 50, 'only the accepted batch was stored');
      const { run } = await ok<{ run: any }>(get('runs/get', { run_id: runId }));
      assert.equal(run.data.metrics.length, 20);
      assert.equal(run.data.metrics.find((m: any) => m.key === 'm3').step, 49, 'latest = highest step');
    });

    test('runs/search: metric + param filter, order_by, paging, attributes, tags, deleted runs', async () => {
      const { experiment_id: exp } = await ok<{ experiment_id: string }>(post('experiments/create', { name: 'search-exp' }));
      const specs = [
        { name: 'r1', auc: 0.93, model: 'resnet18' },
        { name: 'r2', auc: 0.97, model: 'resnet18' },
        { name: 'r3', auc: 0.91, model: 'densenet121' },
        { name: 'r4', auc: 0.89, model: 'resnet18' },
        { name: 'r5', auc: 0.95, model: 'resnet18' },
      ];
      const ids: Record<string, string> = {};
      for (const [i, s] of specs.entries()) {
        const { run } = await ok<{ run: any }>(post('runs/create', { experiment_id: exp, run_name: s.name, start_time: 1700000000000 + i * 1000 }));
        ids[s.name] = run.info.run_id;
        await ok(
          post('runs/log-batch', {
            run_id: run.info.run_id,
            metrics: [{ key: 'auc', value: s.auc, timestamp: 1700000000000, step: 0 }],
            params: [{ key: 'model', value: s.model }],
            tags: [{ key: 'team', value: i % 2 ? 'b' : 'a' }],
          }),
        );
      }
      const noMetric = await newRun(exp, 'r6-no-metric');
      await ok(post('runs/update', { run_id: ids.r2, status: 'FINISHED', end_time: 1700000100000 }));

      const search = (body: object) => ok<{ runs: any[]; next_page_token?: string }>(post('runs/search', { experiment_ids: [exp], ...body }));
      const names = (r: { runs: any[] }) => r.runs.map((x) => x.info.run_name);

      // The filter of MLflow's reference, adapted: metric comparison AND param equality, ordered by the metric.
      const hit = await search({ filter: "metrics.auc > 0.9 and params.model = 'resnet18'", order_by: ['metrics.auc DESC'], max_results: 100 });
      assert.deepEqual(names(hit), ['r2', 'r5', 'r1']);
      assert.deepEqual(hit.runs[0].data.metrics, [{ key: 'auc', value: 0.97, timestamp: 1700000000000, step: 0 }]);
      assert.equal(hit.next_page_token, undefined);

      const page1 = await search({ filter: 'metrics.auc >= 0.9', order_by: ['metrics.auc ASC'], max_results: 2 });
      assert.deepEqual(names(page1), ['r3', 'r1']);
      assert.ok(page1.next_page_token);
      const page2 = await search({ filter: 'metrics.auc >= 0.9', order_by: ['metrics.auc ASC'], max_results: 2, page_token: page1.next_page_token });
      assert.deepEqual(names(page2), ['r5', 'r2']);
      assert.equal(page2.next_page_token, undefined);

      assert.deepEqual(names(await search({ filter: "attributes.status = 'FINISHED'" })), ['r2']);
      assert.deepEqual(names(await search({ filter: "tags.team = 'b' and metrics.auc < 0.96" })), ['r4']);
      assert.deepEqual(names(await search({ filter: "params.model LIKE 'dense%'" })), ['r3']);
      assert.deepEqual(names(await search({ filter: `attributes.run_id IN ('${ids.r1}', '${ids.r4}')`, order_by: ['attributes.start_time ASC'] })), ['r1', 'r4']);
      assert.deepEqual(names(await search({ filter: "attributes.run_name = 'r3'" })), ['r3']);
      // Default order: newest first.
      assert.deepEqual(names(await search({})), ['r6-no-metric', 'r5', 'r4', 'r3', 'r2', 'r1']);
      // A run without the ordered metric comes last in both directions.
      assert.equal(names(await search({ order_by: ['metrics.auc DESC'] })).at(-1), 'r6-no-metric');
      assert.equal(names(await search({ order_by: ['metrics.auc ASC'] })).at(-1), 'r6-no-metric');
      assert.deepEqual(names(await search({ order_by: ['metrics.auc ASC'] })).slice(0, 2), ['r4', 'r3']);
      // Pages across the runs with the key and those without it.
      for (const size of [4, 5, 2]) {
        const seen: string[] = [];
        let token: string | undefined;
        do {
          const page = await search({ order_by: ['metrics.auc DESC', 'params.model'], max_results: size, ...(token ? { page_token: token } : {}) });
          seen.push(...names(page));
          token = page.next_page_token;
        } while (token);
        assert.deepEqual(seen, ['r2', 'r5', 'r1', 'r3', 'r4', 'r6-no-metric'], `page size ${size}`);
      }
      assert.deepEqual(names(await search({ order_by: ['params.model DESC', 'metrics.auc'] })), ['r4', 'r1', 'r5', 'r2', 'r3', 'r6-no-metric']);

      await ok(post('runs/delete', { run_id: noMetric }));
      assert.ok(!names(await search({})).includes('r6-no-metric'));
      assert.deepEqual(names(await search({ run_view_type: 'DELETED_ONLY' })), ['r6-no-metric']);
      const deleted = await ok<{ run: any }>(get('runs/get', { run_id: noMetric }));
      assert.equal(deleted.run.info.lifecycle_stage, 'deleted');

      for (const filter of ["metrics.auc > 'high'", "params.model > 'a'", 'metrics.auc > 0.9 or params.x = 1', 'foo.bar = 1', "metrics.auc >"]) {
        const res = await post('runs/search', { experiment_ids: [exp], filter });
        assert.equal(res.statusCode, 400, filter);
        assert.equal(res.json().error_code, 'INVALID_PARAMETER_VALUE', filter);
      }
      const badToken = await post('runs/search', { experiment_ids: [exp], page_token: 'garbage!' });
      assert.equal(badToken.json().error_code, 'INVALID_PARAMETER_VALUE');
    });

    test('runs/update and runs/log-inputs (dataset inputs) show in runs/get and in search', async () => {
      const runId = await newRun('0', 'with-inputs');
      const updated = await ok<{ run_info: any }>(post('runs/update', { run_id: runId, run_uuid: runId, status: 'FINISHED', end_time: '1700000999000', run_name: 'renamed' }));
      assert.equal(updated.run_info.status, 'FINISHED');
      assert.equal(updated.run_info.end_time, 1700000999000);
      assert.equal(updated.run_info.run_name, 'renamed');
      await ok(
        post('runs/log-inputs', {
          run_id: runId,
          datasets: [
            {
              tags: [{ key: 'mlflow.data.context', value: 'training' }],
              dataset: { name: 'chest-xray-v3', digest: 'd41d8cd9', source_type: 'xray-data-pipeline', source: '{"version_id":"v3"}', schema: '{}', profile: '{"num_rows":5216}' },
            },
          ],
        }),
      );
      const { run } = await ok<{ run: any }>(get('runs/get', { run_id: runId }));
      assert.deepEqual(run.inputs.dataset_inputs, [
        {
          tags: [{ key: 'mlflow.data.context', value: 'training' }],
          dataset: { name: 'chest-xray-v3', digest: 'd41d8cd9', source_type: 'xray-data-pipeline', source: '{"version_id":"v3"}', schema: '{}', profile: '{"num_rows":5216}' },
        },
      ]);
      const found = await ok<{ runs: any[] }>(post('runs/search', { experiment_ids: ['0'], filter: "datasets.name = 'chest-xray-v3'" }));
      assert.deepEqual(
        found.runs.map((r) => r.info.run_id),
        [runId],
      );
      // What mlflow.<flavor>.log_model() sends after uploading the model's files.
      const mlmodel = { artifact_path: 'model', run_id: runId, utc_time_created: '2024-01-01 00:00:00.000000', flavors: { onnx: { onnx_version: '1.16.0', data: 'model.onnx' } } };
      await ok(post('runs/log-model', { run_id: runId, model_json: JSON.stringify(mlmodel) }));
      const withModel = await ok<{ run: any }>(get('runs/get', { run_id: runId }));
      assert.deepEqual(JSON.parse(withModel.run.data.tags.find((t: any) => t.key === 'mlflow.log-model.history').value), [mlmodel]);

      const badStatus = await post('runs/update', { run_id: runId, status: 'DONE' });
      assert.equal(badStatus.statusCode, 400);
      assert.equal(badStatus.json().error_code, 'INVALID_PARAMETER_VALUE');
    });

    test('the mlflow-artifacts proxy stores run artifacts content-addressed; artifacts/list shows them', async () => {
      const runId = await newRun('0', 'artifacts');
      const bytes = Buffer.from('{"hello":"world"}');
      const put = await h.app.inject({ method: 'PUT', url: `/api/2.0/mlflow-artifacts/artifacts/0/${runId}/artifacts/model/config.json`, payload: bytes, headers: { 'content-type': 'application/json' } });
      assert.equal(put.statusCode, 200, put.body);
      const put2 = await h.app.inject({ method: 'PUT', url: `/api/2.0/mlflow-artifacts/artifacts/0/${runId}/artifacts/notes.txt`, payload: 'plain text', headers: { 'content-type': 'text/plain' } });
      assert.equal(put2.statusCode, 200, put2.body);
      const back = await h.app.inject({ method: 'GET', url: `/api/2.0/mlflow-artifacts/artifacts/0/${runId}/artifacts/model/config.json` });
      assert.equal(back.statusCode, 200);
      assert.deepEqual(back.rawPayload, bytes);
      const listed = await h.app.inject({ method: 'GET', url: '/api/2.0/mlflow-artifacts/artifacts', query: { path: `0/${runId}/artifacts/model` } });
      assert.deepEqual(listed.json(), { files: [{ path: 'config.json', is_dir: false, file_size: bytes.length }] });
      const list = await ok<any>(get('artifacts/list', { run_id: runId }));
      assert.deepEqual(list, {
        root_uri: `mlflow-artifacts:/0/${runId}/artifacts`,
        files: [
          { path: 'model', is_dir: true },
          { path: 'notes.txt', is_dir: false, file_size: 10 },
        ],
      });
      const traversal = await h.app.inject({ method: 'PUT', url: `/api/2.0/mlflow-artifacts/artifacts/0/${runId}/artifacts/a/%2e%2e/%2e%2e/x`, payload: 'x', headers: { 'content-type': 'text/plain' } });
      assert.equal(traversal.statusCode, 400);
      assert.equal(traversal.json().error_code, 'INVALID_PARAMETER_VALUE');
      const missing = await h.app.inject({ method: 'GET', url: `/api/2.0/mlflow-artifacts/artifacts/0/${runId}/artifacts/nope.bin` });
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.json().error_code, 'RESOURCE_DOES_NOT_EXIST');
    });

    test('unknown MLflow endpoints answer ENDPOINT_NOT_FOUND in MLflow format', async () => {
      const res = await post('runs/teleport', {});
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().error_code, 'ENDPOINT_NOT_FOUND');
    });
  });
}

describe('MLflow API with auth on', () => {
  let h: Harness;
  let viewerKey: string;
  before(async () => {
    h = await openHarness('sqlite', { XRAY_AUTH: 'on' });
    viewerKey = (await h.platform.keys.create('viewer-bot', 'viewer')).key;
  });
  after(async () => h?.close());

  test('missing key → 401 UNAUTHENTICATED, too low a role → 403 PERMISSION_DENIED, in MLflow format', async () => {
    const anon = await h.app.inject({ method: 'POST', url: '/api/2.0/mlflow/experiments/create', payload: { name: 'x' } });
    assert.equal(anon.statusCode, 401);
    assert.equal(anon.json().error_code, 'UNAUTHENTICATED');
    const viewer = await h.app.inject({ method: 'POST', url: '/api/2.0/mlflow/experiments/create', payload: { name: 'x' }, headers: { authorization: `Bearer ${viewerKey}` } });
    assert.equal(viewer.statusCode, 403);
    assert.equal(viewer.json().error_code, 'PERMISSION_DENIED');
    const read = await h.app.inject({ method: 'GET', url: '/api/2.0/mlflow/experiments/get', query: { experiment_id: '0' }, headers: { authorization: `Bearer ${viewerKey}` } });
    assert.equal(read.statusCode, 200);
  });
});
