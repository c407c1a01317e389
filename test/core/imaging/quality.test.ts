import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkQuality, passesQuality } from '../../../src/core/imaging/quality.js';
import { imageStats } from '../../../src/core/imaging/stats.js';
import { renderChestXray } from '../../../src/core/imaging/synthetic.js';

function statsOf(options: Parameters<typeof renderChestXray>[0]) {
  const { width, height, pixels } = renderChestXray(options);
  return { info: { width, height, isGreyscaleContent: true }, stats: imageStats(pixels, width, height) };
}

const codes = (issues: { code: string }[]): string[] => issues.map((i) => i.code);

describe('checkQuality', () => {
  test('a normal synthetic radiograph passes with no findings', () => {
    const { info, stats } = statsOf({ seed: 51, size: 256 });
    assert.deepEqual(checkQuality(info, stats), []);
  });

  test('a blank image is an error; low contrast a warning', () => {
    const blank = imageStats(new Uint8Array(256 * 256).fill(120), 256, 256);
    const issues = checkQuality({ width: 256, height: 256 }, blank);
    assert.deepEqual(codes(issues), ['BLANK']);
    assert.equal(issues[0]!.severity, 'error');
    assert.equal(passesQuality(issues), false);

    const flat = new Uint8Array(256 * 256).map((_, i) => 100 + (i % 40));
    const low = checkQuality({ width: 256, height: 256 }, imageStats(flat, 256, 256));
    assert.deepEqual(codes(low), ['LOW_CONTRAST']);
    assert.equal(low[0]!.severity, 'warning');
    assert.equal(passesQuality(low), true);
  });

  test('extreme exposure shows up as clipping or an extreme mean', () => {
    const bright = statsOf({ seed: 52, size: 256, exposure: 1.5 });
    assert.ok(codes(checkQuality(bright.info, bright.stats)).includes('CLIPPED_BRIGHT'));
    const dark = statsOf({ seed: 52, size: 256, exposure: -3 });
    assert.ok(codes(checkQuality(dark.info, dark.stats)).includes('TOO_DARK'));
    const halfBlack = new Uint8Array(256 * 256).map((_, i) => (i < 256 * 150 ? 0 : 60 + (i % 190)));
    assert.ok(codes(checkQuality({ width: 256, height: 256 }, imageStats(halfBlack, 256, 256))).includes('CLIPPED_DARK'));
    const white = new Uint8Array(256 * 256).map((_, i) => 200 + (i % 56));
    assert.ok(codes(checkQuality({ width: 256, height: 256 }, imageStats(white, 256, 256))).includes('TOO_BRIGHT'));
  });

  test('colour content and small images', () => {
    const { stats } = statsOf({ seed: 53, size: 64 });
    const issues = checkQuality({ width: 50, height: 300, isGreyscaleContent: false }, stats);
    assert.deepEqual(codes(issues), ['TOO_SMALL', 'COLOUR_CONTENT']);
    assert.ok(issues.every((i) => i.severity === 'error'));
    const warn = checkQuality({ width: 200, height: 300 }, stats);
    assert.deepEqual(warn.map((i) => [i.code, i.severity, i.value, i.threshold]), [['TOO_SMALL', 'warning', 200, 224]]);
  });

  test('thresholds are configurable', () => {
    const { info, stats } = statsOf({ seed: 54, size: 256 });
    const strict = checkQuality(info, stats, { blankStd: 1000, clipDarkFrac: 0 });
    assert.deepEqual(codes(strict).sort(), ['BLANK', 'CLIPPED_DARK']);
    const lenient = checkQuality({ ...info, isGreyscaleContent: false }, stats, { colourSeverity: 'warning' });
    assert.equal(lenient[0]!.severity, 'warning');
    assert.equal(passesQuality(lenient), true);
  });
});
