import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFilter, parseOrderBy, RUN_GRAMMAR } from '../../src/model-registry/store/search-filter.js';

describe("MLflow's search DSL", () => {
  test('parses AND-ed clauses over metrics, params, tags, attributes and datasets', () => {
    assert.deepEqual(parseFilter("metrics.auc > 0.9 and params.model = 'resnet18' AND tags.team != \"b\" and attributes.status = 'FINISHED' and datasets.name IN ('a', 'b')", RUN_GRAMMAR), [
      { type: 'metric', key: 'auc', comparator: '>', value: 0.9 },
      { type: 'param', key: 'model', comparator: '=', value: 'resnet18' },
      { type: 'tag', key: 'team', comparator: '!=', value: 'b' },
      { type: 'attribute', key: 'status', comparator: '=', value: 'FINISHED' },
      { type: 'dataset', key: 'name', comparator: 'IN', value: ['a', 'b'] },
    ]);
  });

  test('quoted and dotted keys, aliases of prefixes and attributes, scientific numbers, NOT IN, ILIKE', () => {
    assert.deepEqual(parseFilter('metrics."val auc" >= 1e-3 and metric.`loss-x` < -2.5', RUN_GRAMMAR), [
      { type: 'metric', key: 'val auc', comparator: '>=', value: 0.001 },
      { type: 'metric', key: 'loss-x', comparator: '<', value: -2.5 },
    ]);
    assert.deepEqual(parseFilter("tags.mlflow.runName ILIKE '%fox%' and run.created > 5 and attr.run_id NOT IN ('x')", RUN_GRAMMAR), [
      { type: 'tag', key: 'mlflow.runName', comparator: 'ILIKE', value: '%fox%' },
      { type: 'attribute', key: 'start_time', comparator: '>', value: 5 },
      { type: 'attribute', key: 'run_id', comparator: 'NOT IN', value: ['x'] },
    ]);
    assert.deepEqual(parseFilter("params.name = 'it''s'", RUN_GRAMMAR), [{ type: 'param', key: 'name', comparator: '=', value: "it's" }]);
    assert.deepEqual(parseFilter('   ', RUN_GRAMMAR), []);
  });

  test('rejects what MLflow rejects, with INVALID_INPUT', () => {
    for (const bad of [
      "metrics.auc > 'x'",
      'params.lr > 0.1',
      "tags.a IN ('x')",
      "metrics.a > 1 or metrics.b > 1",
      'metrics.a > 1 and',
      "attributes.color = 'red'",
      "bogus.key = 'x'",
      "params.a = 'unterminated",
      'metrics.a 1',
      "datasets.schema = 'x'",
      'metrics.a > 1 metrics.b > 2',
    ]) {
      assert.throws(() => parseFilter(bad, RUN_GRAMMAR), { code: 'INVALID_INPUT' }, bad);
    }
  });

  test('order_by terms', () => {
    assert.deepEqual(parseOrderBy(['metrics.auc DESC', 'params.lr', 'start_time asc', 'tags."my tag" DESC'], RUN_GRAMMAR), [
      { type: 'metric', key: 'auc', ascending: false },
      { type: 'param', key: 'lr', ascending: true },
      { type: 'attribute', key: 'start_time', ascending: true },
      { type: 'tag', key: 'my tag', ascending: false },
    ]);
    assert.throws(() => parseOrderBy(['metrics.auc DESC extra'], RUN_GRAMMAR), { code: 'INVALID_INPUT' });
    assert.throws(() => parseOrderBy(['datasets.name'], RUN_GRAMMAR), { code: 'INVALID_INPUT' });
  });
});
