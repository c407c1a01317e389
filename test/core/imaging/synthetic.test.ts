import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { probeImage } from '../../../src/core/imaging/decode.js';
import { generateChestXray, generateDataset, renderChestXray } from '../../../src/core/imaging/synthetic.js';
import { expectAppError } from './fixtures.js';

const mean = (px: Uint8Array): number => px.reduce((s, v) => s + v, 0) / px.length;

describe('generateChestXray', () => {
  test('same seed, same bytes (PNG and JPEG); another seed, other bytes', async () => {
    const a = await generateChestXray({ seed: 61, size: 128 });
    assert.ok(a.equals(await generateChestXray({ seed: 61, size: 128 })));
    assert.ok(!a.equals(await generateChestXray({ seed: 62, size: 128 })));
    const j = await generateChestXray({ seed: 'x', size: 128, format: 'jpeg', quality: 80 });
    assert.ok(j.equals(await generateChestXray({ seed: 'x', size: 128, format: 'jpeg', quality: 80 })));
    assert.equal((await probeImage(j)).format, 'jpeg');
  });

  test('honours size, width and height and writes single-channel images', async () => {
    const info = await probeImage(await generateChestXray({ seed: 63, width: 200, height: 160 }));
    assert.deepEqual([info.width, info.height, info.channels], [200, 160, 1]);
    const meta = await sharp(await generateChestXray({ seed: 63, size: 96, format: 'jpeg' })).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [96, 96, 1]);
  });

  test('looks like a frontal film: dark lungs either side of a bright mediastinum, dark background', () => {
    const { pixels } = renderChestXray({ seed: 64, size: 128, noise: 0 });
    const at = (x: number, y: number): number => pixels[Math.round(y * 127) * 128 + Math.round(x * 127)]!;
    const box = (x0: number, x1: number, y0: number, y1: number): number => {
      let s = 0;
      let n = 0;
      for (let y = Math.round(y0 * 127); y <= Math.round(y1 * 127); y++) for (let x = Math.round(x0 * 127); x <= Math.round(x1 * 127); x++, n++) s += pixels[y * 128 + x]!;
      return s / n;
    };
    const rightLung = box(0.26, 0.34, 0.35, 0.5);
    const leftLung = box(0.66, 0.74, 0.35, 0.5);
    const mediastinum = box(0.47, 0.53, 0.35, 0.5);
    assert.ok(mediastinum > rightLung + 40 && mediastinum > leftLung + 40, `${rightLung} ${mediastinum} ${leftLung}`);
    assert.ok(at(0.02, 0.5) < 20, 'air outside the body is dark');
  });

  test('pneumonia adds opacity inside the lungs only', () => {
    for (const kind of ['bacteria', 'virus'] as const) {
      const normal = renderChestXray({ seed: 65, size: 128, noise: 0 });
      const sick = renderChestXray({ seed: 65, size: 128, noise: 0, pneumonia: true, pneumoniaKind: kind });
      let brighter = 0;
      let darker = 0;
      for (let i = 0; i < normal.pixels.length; i++) {
        if (sick.pixels[i]! > normal.pixels[i]! + 8) brighter++;
        if (sick.pixels[i]! < normal.pixels[i]!) darker++;
      }
      assert.ok(brighter > 100, `${kind}: ${brighter} pixels brighter`);
      assert.equal(darker, 0, `${kind}: opacities never darken`);
      // Outside the chest (top corners, below the diaphragm) nothing changes.
      for (const [x, y] of [[2, 2], [125, 2], [64, 124]] as const) assert.equal(sick.pixels[y * 128 + x], normal.pixels[y * 128 + x]);
    }
  });

  test('exposure shifts brightness monotonically; invert is the exact negative', () => {
    const means = [-1, 0, 0.5].map((exposure) => mean(renderChestXray({ seed: 66, size: 96, exposure }).pixels));
    assert.ok(means[0]! < means[1]! && means[1]! < means[2]!, means.join(' < '));
    const plain = renderChestXray({ seed: 66, size: 96 });
    const inverted = renderChestXray({ seed: 66, size: 96, invert: true });
    for (let i = 0; i < plain.pixels.length; i++) assert.equal(inverted.pixels[i], 255 - plain.pixels[i]!);
  });

  test('anatomy follows patientSeed, pose and noise follow seed', () => {
    const render = (seed: string, patientSeed?: string): Uint8Array =>
      renderChestXray({ seed, ...(patientSeed ? { patientSeed } : {}), size: 96 }).pixels;
    assert.deepEqual(render('a'), render('a', 'a'), 'patientSeed defaults to seed');
    assert.notDeepEqual(render('a', 'p1'), render('a', 'p2'), 'same pose, other patient');
    assert.notDeepEqual(render('a', 'p1'), render('b', 'p1'), 'same patient, other image');
  });

  test('rejects invalid options', async () => {
    await expectAppError(() => renderChestXray({ seed: 1, size: 8 }), 'INVALID_INPUT');
    await expectAppError(() => renderChestXray({ seed: 1, width: 100.5 }), 'INVALID_INPUT');
    await expectAppError(() => renderChestXray({ seed: 1, noise: -1 }), 'INVALID_INPUT');
    await expectAppError(generateChestXray({ seed: 1, format: 'jpeg', quality: 0 }), 'INVALID_INPUT');
  });
});

describe('generateDataset', () => {
  test('writes a Kermany-style tree with several images per patient, deterministically', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'xray-synth-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const a = await generateDataset(join(root, 'a'), { perClass: 6, seed: 7, size: 64, imagesPerPatient: [2, 3] });
    const b = await generateDataset(join(root, 'b'), { perClass: 6, seed: 7, size: 64, imagesPerPatient: [2, 3] });

    assert.deepEqual(a.files, b.files);
    assert.equal(a.files.filter((f) => f.label === 'NORMAL').length, 6);
    assert.equal(a.files.filter((f) => f.label === 'PNEUMONIA').length, 6);
    const normal = (await readdir(join(root, 'a', 'NORMAL'))).sort();
    const pneumonia = (await readdir(join(root, 'a', 'PNEUMONIA'))).sort();
    assert.equal(normal.length, 6);
    assert.equal(pneumonia.length, 6);
    for (const name of normal) assert.match(name, /^IM-\d{4}-0001(-\d{4})?\.jpeg$/);
    for (const name of pneumonia) assert.match(name, /^person\d+_(bacteria|virus)_\d+\.jpeg$/);
    for (const f of a.files) {
      const name = f.path.split('/')[1]!;
      assert.ok(name.startsWith(f.patientId + (f.label === 'NORMAL' ? '-' : '_')), `${name} vs ${f.patientId}`);
      assert.equal(f.kind === null, f.label === 'NORMAL');
    }
    const perPatient = new Map<string, number>();
    for (const f of a.files) perPatient.set(f.patientId, (perPatient.get(f.patientId) ?? 0) + 1);
    assert.ok([...perPatient.values()].some((n) => n >= 2), 'some patients have several images');

    for (const f of a.files) {
      const bytes = await readFile(join(root, 'a', f.path));
      assert.ok(bytes.equals(await readFile(join(root, 'b', f.path))), `${f.path} differs between runs`);
    }
    const info = await probeImage(await readFile(join(root, 'a', a.files[0]!.path)));
    assert.deepEqual([info.format, info.width, info.height], ['jpeg', 64, 64]);
  });

  test('rejects invalid options', async () => {
    await expectAppError(generateDataset(join(tmpdir(), 'never-written'), { perClass: 0, seed: 1 }), 'INVALID_INPUT');
    await expectAppError(generateDataset(join(tmpdir(), 'never-written'), { perClass: 2, seed: 1, imagesPerPatient: [3, 1] }), 'INVALID_INPUT');
  });
});
