import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { testConfig } from '../../src/core/config/index.js';
import { generateChestXray } from '../../src/core/imaging/index.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { TINY_MODEL } from './harness.js';

/**
 * The lung-field heatmap report (issue 14 item 3) end to end: synthetic chest X-rays in the data
 * pipeline, a dataset version, the tiny fixture (a 4×4 CAM) registered on it, the deployment's
 * scorer returning the maps, the report kept on the version and shown in its card.
 */

const admin = { name: 'ada', role: 'admin' as const };
const NOFEATURES = readFileSync(path.resolve(import.meta.dirname, '../deployment/fixtures/tiny-model-nofeatures.onnx'));

async function json(res: Response): Promise<any> {
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

describe('lung-field heatmap report: API, stored on the version, in the model card', () => {
  let home: string;
  let running: RunningPlatform;
  let registry: ModelRegistryService;
  let base: string;
  let datasetVersion: string;

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'xray-lungfields-'));
    running = await startPlatform({ config: testConfig(home, { XRAY_HOST: '127.0.0.1' }), services: ['data-pipeline', 'model-registry', 'deployment'], randomPorts: true });
    registry = new ModelRegistryService(running.platform);
    base = running.urls['model-registry']!;
    const dp = running.urls['data-pipeline']!;
    for (const label of ['NORMAL', 'PNEUMONIA'] as const) {
      const fd = new FormData();
      fd.append('label', label);
      for (let i = 0; i < 12; i++) {
        const png = await generateChestXray({ seed: `${label}-${i}`, size: 96, pneumonia: label === 'PNEUMONIA' });
        fd.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), `${label.toLowerCase()}-patient${i}.png`);
      }
      const r = await fetch(`${dp}/ingest`, { method: 'POST', body: fd });
      assert.ok(r.ok, JSON.stringify(await json(r)));
    }
    const created = await json(await fetch(`${dp}/version/create`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'chests', val_fraction: 0.25, seed: 3, preprocessing: { size: 16 } }) }));
    datasetVersion = created.version.id;
    await registry.register({ name: 'cam', actor: admin, source: { kind: 'upload', data: TINY_MODEL, filename: 'model.onnx' }, metadata: { input_size: 16, threshold: 0.5, dataset_version: datasetVersion } });
    await registry.register({ name: 'nodata', actor: admin, source: { kind: 'upload', data: TINY_MODEL, filename: 'model.onnx' }, metadata: { input_size: 16, threshold: 0.5 } });
    await registry.register({ name: 'nocam', actor: admin, source: { kind: 'upload', data: NOFEATURES, filename: 'model.onnx' }, metadata: { input_size: 16, threshold: 0.5, dataset_version: datasetVersion } });
  });
  after(async () => {
    await running?.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('measures every validation image against an atlas of the training split and keeps the report on the version', async () => {
    const card0 = await json(await fetch(`${base}/models/cam/versions/1/card`));
    assert.equal(card0.heatmap_location, null);
    const res = await fetch(`${base}/models/cam/versions/1/lung-fields`, { method: 'POST' });
    const report = await json(res);
    assert.equal(res.status, 200, JSON.stringify(report));
    assert.equal(report.dataset_version, datasetVersion);
    assert.equal(report.split, 'val');
    assert.equal(report.n, 6, 'a quarter of 24 images is validation');
    assert.equal(report.failed, 0);
    assert.equal(report.atlas.train_images, 18);
    assert.ok(report.atlas.coverage > 0.05 && report.atlas.coverage < 0.6, `coverage ${report.atlas.coverage}`);
    // The lung fields' box in input fractions (a candidate input_crop): inside the thorax prior, on cells of the atlas grid.
    const box = report.atlas.bbox;
    assert.ok(box.top >= 0.09 && box.top < box.bottom && box.bottom <= 0.79, JSON.stringify(box));
    assert.ok(box.left >= 0.09 && box.left < 0.5 && box.right > 0.5 && box.right <= 0.92, JSON.stringify(box));
    for (const v of Object.values(box) as number[]) assert.equal(Number.isInteger(v * report.atlas.side), true);
    assert.ok((box.bottom - box.top) * (box.right - box.left) >= report.atlas.coverage, 'the box holds the fields');
    assert.match(report.atlas.description, /not a segmentation/);
    assert.ok(report.mean_inside >= 0 && report.mean_inside <= 1);
    const r = report.regions;
    assert.ok(Math.abs(r.inside + r.above + r.below + r.between + r.lateral - 1) < 1e-6);
    assert.deepEqual(Object.keys(report.by_label).sort(), ['NORMAL', 'PNEUMONIA']);

    const card = await json(await fetch(`${base}/models/cam/versions/1/card`));
    assert.deepEqual(card.heatmap_location, report);
    const md = await (await fetch(`${base}/models/cam/versions/1/card?format=markdown`)).text();
    assert.match(md, /Heatmap location/);
    assert.match(md, /Lung fields' bounding box \(fractions of the input\): top 0\.\d{3}/);
  });

  test('typed 422s: no dataset version recorded, a model without a class-activation map; 404 for an unknown version', async () => {
    const noData = await fetch(`${base}/models/nodata/versions/1/lung-fields`, { method: 'POST' });
    assert.equal(noData.status, 422);
    assert.match((await json(noData)).error.message, /data pipeline does not have/);
    const noCam = await fetch(`${base}/models/nocam/versions/1/lung-fields`, { method: 'POST' });
    const body = await json(noCam);
    assert.equal(noCam.status, 422, JSON.stringify(body));
    assert.equal(body.error.code, 'UNPROCESSABLE');
    assert.match(body.error.message, /class-activation map/);
    const missing = await fetch(`${base}/models/cam/versions/9/lung-fields`, { method: 'POST' });
    assert.equal(missing.status, 404);
  });
});
