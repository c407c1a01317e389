import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openHarness, type Harness } from './harness.js';

describe('model registry app', () => {
  let h: Harness;
  before(async () => {
    h = await openHarness('sqlite');
  });
  after(async () => h?.close());

  test('boots, is ready, and documents both APIs in OpenAPI', async () => {
    assert.equal((await h.app.inject({ method: 'GET', url: '/ready' })).statusCode, 200);
    const docs = await h.app.inject({ method: 'GET', url: '/docs/json' });
    assert.equal(docs.statusCode, 200);
    const paths = Object.keys(docs.json().paths);
    for (const p of [
      '/api/2.0/mlflow/runs/search',
      '/api/2.0/mlflow/runs/log-batch',
      '/api/2.0/mlflow/registered-models/alias',
      '/api/2.0/mlflow/model-versions/transition-stage',
      '/models/register',
      '/models/{name}/stage',
      '/models/compare',
      '/models/{name}/versions/{version}/card',
      '/artifacts/gc',
    ]) {
      assert.ok(paths.includes(p), `${p} is documented`);
    }
  });

  test('errors outside /api/2.0/mlflow keep the platform envelope', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/models/ghost' });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), { error: { code: 'NOT_FOUND', message: 'Registered Model with name=ghost not found' } });
  });
});
