import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateGate } from '../../src/model-registry/service/promotion-gate.js';
import { loadConfig } from '../../src/core/config/index.js';

describe('promotion gate', () => {
  const gate = (candidate: number | null, production: number | null | undefined, margin = 0.01) =>
    evaluateGate({ candidate: { version: 2, val_auc: candidate }, production: production === undefined ? null : { version: 1, val_auc: production }, margin, actor: 'alice', now: 1 });

  test('passes when no worse than production by more than the margin (boundary included)', () => {
    assert.equal(gate(0.95, 0.94).passed, true);
    assert.equal(gate(0.93, 0.94).passed, true, 'exactly the margin below');
    assert.equal(gate(0.9299, 0.94).passed, false);
    const v = gate(0.92, 0.94);
    assert.equal(v.passed, false);
    assert.ok(Math.abs(v.delta! + 0.02) < 1e-12);
    assert.match(v.message, /0\.0200 below production version 1 \(0\.9400\), more than the allowed margin 0\.01/);
    assert.equal(v.decided_by, 'alice');
    assert.equal(v.forced, false);
  });

  test('no production model passes; a candidate without AUC fails; a production model without AUC passes', () => {
    assert.equal(gate(0.7, undefined).passed, true);
    assert.equal(gate(null, 0.9).passed, false);
    assert.match(gate(null, 0.9).message, /no validation AUC recorded/);
    assert.equal(gate(0.7, null).passed, true);
    assert.equal(gate(0.5, 0.9, 0.5).passed, true, 'a wide margin lets more through');
  });

  test('XRAY_PROMOTION_MARGIN: default 0.01, parsed, validated', () => {
    assert.equal(loadConfig({}).promotionMargin, 0.01);
    assert.equal(loadConfig({ XRAY_PROMOTION_MARGIN: '0.05' }).promotionMargin, 0.05);
    assert.throws(() => loadConfig({ XRAY_PROMOTION_MARGIN: 'lots' }), /XRAY_PROMOTION_MARGIN/);
    assert.throws(() => loadConfig({ XRAY_PROMOTION_MARGIN: '2' }), /XRAY_PROMOTION_MARGIN/);
  });
});
