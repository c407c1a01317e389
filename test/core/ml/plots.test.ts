import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { reliabilityPng, reliabilitySvg, rocCurvePng, rocCurveSvg } from '../../../src/core/ml/plots.js';
import { calibration, rocAuc, rocCurve } from '../../../src/core/ml/metrics.js';
import { isAppError } from '../../../src/core/errors.js';

const labels = [0, 0, 1, 1, 0, 1, 1, 0, 1, 1];
const scores = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.65, 0.55, 0.7, 0.3];
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe('plots', () => {
  test('rocCurvePng renders a PNG of the requested size', async () => {
    const png = await rocCurvePng(
      [
        { label: 'model A', roc: rocCurve(labels, scores), auc: rocAuc(labels, scores) },
        { label: 'model <B> & "C"', roc: [{ fpr: 0, tpr: 0 }, { fpr: 1, tpr: 1 }] },
      ],
      { width: 400, height: 300 },
    );
    assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 400, 300]);
    const defaults = await sharp(await rocCurvePng([{ label: 'x', roc: rocCurve(labels, scores) }])).metadata();
    assert.deepEqual([defaults.width, defaults.height], [480, 480]);
  });

  test('the ROC SVG has axes, diagonal, legend with AUC and escaped labels', () => {
    const svg = rocCurveSvg([{ label: 'a<b', roc: rocCurve(labels, scores), auc: 0.8123 }]);
    assert.match(svg, /False positive rate/);
    assert.match(svg, /True positive rate/);
    assert.match(svg, /stroke-dasharray/);
    assert.match(svg, /a&#60;b \(AUC 0\.812\)/);
    assert.match(svg, /<polyline /);
    assert.throws(() => rocCurveSvg([]), isAppError);
    assert.throws(() => rocCurveSvg([{ label: 'x', roc: [] }], { width: 10 }), isAppError);
  });

  test('reliabilityPng renders bins, diagonal and ECE', async () => {
    const cal = calibration(labels, scores, { bins: 5 });
    const svg = reliabilitySvg(cal);
    assert.match(svg, /ECE/);
    assert.equal((svg.match(/<circle /g) ?? []).length, cal.bins.filter((b) => b.count > 0).length);
    const png = await reliabilityPng(cal, { width: 320, height: 320 });
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 320, 320]);
    // The plot is not blank: it has dark (axis/text) and coloured pixels.
    const stats = await sharp(png).stats();
    assert.ok(stats.channels[0]!.min < 80 && stats.channels[0]!.max > 240);
  });
});
