import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { generateChestXray, makeDicom, preprocess, toModelInput } from '../../src/core/imaging/index.js';
import { KyselyPredictionStore } from '../../src/deployment/store/prediction-store.js';
import { dataContext } from '../../src/data-pipeline/service/context.js';
import { ingestFile } from '../../src/data-pipeline/service/ingest.js';
import { NO_FEATURES_MODEL, loadModel, multipart, predictRaw, startDeployment, type Harness } from './helpers.js';

describe('deployment: predictions over HTTP', () => {
  let h: Harness;
  let png: Buffer;
  let jpeg: Buffer;

  before(async () => {
    h = await startDeployment({ XRAY_MAX_UPLOAD_MB: '1' });
    png = await generateChestXray({ seed: 11, size: 256, pneumonia: true });
    jpeg = await generateChestXray({ seed: 12, size: 300, format: 'jpeg' });
  });
  after(() => h.close());

  test('before any model is loaded, /predict answers 503 MODEL_NOT_READY with Retry-After', async () => {
    const res = await predictRaw(h.app, png);
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'MODEL_NOT_READY');
    assert.match(res.json().error.message, /not loaded/);
    assert.ok(res.headers['retry-after']);
    const ready = await h.app.inject({ method: 'GET', url: '/v2/health/ready' });
    assert.equal(ready.statusCode, 503);
  });

  test('a local ONNX file loads and is listed with its input spec', async () => {
    const info = await loadModel(h.app, { version: 'v1' });
    assert.equal(info.name, 'pneumonia');
    assert.equal(info.heatmap_method, 'cam');
    const res = await h.app.inject({ method: 'GET', url: '/models' });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.models.length, 1);
    assert.deepEqual(body.models[0].input, { name: 'input', datatype: 'FP32', shape: [-1, 1, 16, 16] });
    assert.equal(body.models[0].default, true);
    assert.equal((await h.app.inject({ method: 'GET', url: '/v2/health/ready' })).statusCode, 200);
  });

  test('the same image gives the same probability through /predict, /predict/batch and /v2 infer', async () => {
    await h.platform.cache.clear();
    const single = await predictRaw(h.app, png);
    assert.equal(single.statusCode, 200, single.body);
    const p1 = single.json();
    assert.equal(p1.cached, false);
    assert.equal(p1.label, p1.probability >= p1.threshold ? 'PNEUMONIA' : 'NORMAL');

    await h.platform.cache.clear();
    const mp = multipart([
      { filename: 'a.png', type: 'image/png', data: png },
      { filename: 'b.jpeg', type: 'image/jpeg', data: jpeg },
    ]);
    const batch = await h.app.inject({ method: 'POST', url: '/predict/batch', ...mp });
    assert.equal(batch.statusCode, 200, batch.body);
    const b = batch.json();
    assert.equal(b.succeeded, 2);
    assert.equal(b.results[0].filename, 'a.png');
    assert.equal(b.results[0].prediction.cached, false);
    assert.ok(Math.abs(b.results[0].prediction.probability - p1.probability) <= 1e-5);

    const models = (await h.app.inject({ method: 'GET', url: '/models' })).json();
    const spec = models.models[0].preprocessing;
    const pre = await preprocess(png, { size: spec.size, mode: spec.mode, pad: spec.pad });
    const tensor = Array.from(toModelInput(pre.pixels, spec.size));
    const v2 = await h.app.inject({
      method: 'POST',
      url: '/v2/models/pneumonia/infer',
      payload: { id: 'req-1', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, spec.size, spec.size], data: tensor }] },
    });
    assert.equal(v2.statusCode, 200, v2.body);
    const out = v2.json();
    assert.equal(out.id, 'req-1');
    assert.equal(out.model_version, 'v1');
    assert.deepEqual(out.outputs[0].shape, [1, 1]);
    assert.ok(Math.abs(out.outputs[0].data[0] - p1.probability) <= 1e-5);

    const versioned = await h.app.inject({
      method: 'POST',
      url: '/v2/models/pneumonia/versions/v1/infer',
      payload: { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 1, spec.size, spec.size], data: [tensor, tensor] }], outputs: [{ name: 'probability' }, { name: 'features' }] },
    });
    assert.equal(versioned.statusCode, 200, versioned.body);
    const [prob, feats] = versioned.json().outputs;
    assert.deepEqual(prob.shape, [2, 1]);
    assert.ok(Math.abs(prob.data[1] - p1.probability) <= 1e-5);
    assert.deepEqual(feats.shape, [2, 2, 4, 4]);
  });

  test('/predict/batch with {hashes} predicts images stored by the data pipeline', async () => {
    const stored = await ingestFile(dataContext(h.platform), { bytes: png, fileName: 'stored.png', label: 'PNEUMONIA', actor: 'tester' });
    assert.ok(stored.hash, JSON.stringify(stored));
    const direct = (await predictRaw(h.app, png)).json();
    const res = await h.app.inject({ method: 'POST', url: '/predict/batch', payload: { hashes: [stored.hash, 'e'.repeat(64)] } });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.succeeded, 1);
    assert.equal(body.results[0].hash, stored.hash);
    assert.ok(Math.abs(body.results[0].prediction.probability - direct.probability) <= 1e-5);
    assert.equal(body.results[1].error.code, 'NOT_FOUND');
    const badJson = await h.app.inject({ method: 'POST', url: '/predict/batch', payload: { hashes: ['nope'] } });
    assert.equal(badJson.statusCode, 400);
  });

  test('PNG, JPEG and DICOM inputs predict; multipart works for a single file', async () => {
    const grey = new Uint8Array(128 * 128).map((_, i) => (i * 7) % 256);
    const dicom = makeDicom({ width: 128, height: 128, pixels: grey, bitsAllocated: 8, photometric: 'MONOCHROME2' });
    for (const [data, type] of [
      [png, 'image/png'],
      [jpeg, 'image/jpeg'],
      [dicom, 'application/dicom'],
      [dicom, 'application/octet-stream'],
    ] as const) {
      const res = await predictRaw(h.app, data, type);
      assert.equal(res.statusCode, 200, `${type}: ${res.body}`);
      const p = res.json();
      assert.ok(p.probability > 0 && p.probability < 1);
      for (const k of ['preprocess', 'queue', 'inference', 'heatmap', 'total']) assert.equal(typeof p.timings_ms[k], 'number');
    }
    const mp = multipart([{ filename: 'x.jpeg', type: 'image/jpeg', data: jpeg }]);
    const res = await h.app.inject({ method: 'POST', url: '/predict', ...mp });
    assert.equal(res.statusCode, 200, res.body);
  });

  test('a repeat of the same bytes is answered from the cache, counted as a hit', async () => {
    const image = await generateChestXray({ seed: 99, size: 200 });
    const first = (await predictRaw(h.app, image)).json();
    const second = (await predictRaw(h.app, image)).json();
    assert.equal(first.cached, false);
    assert.equal(second.cached, true);
    assert.equal(second.probability, first.probability);
    assert.notEqual(second.prediction_id, first.prediction_id);
    const metrics = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, /xray_deployment_cache_lookups_total\{result="hit"[^}]*\} [1-9]/);
    assert.match(metrics, /xray_deployment_batch_size_bucket/);
    assert.match(metrics, /xray_deployment_stage_seconds_bucket\{[^}]*stage="inference"/);
  });

  test('heatmaps are scaled to the prediction: a confident negative shows little colour, a confident positive a lot', async () => {
    // The tiny model's CAM is hot where the picture is bright; its probability follows the mean brightness.
    const square = async (background: number, patch: number) => {
      const px = Buffer.alloc(64 * 64, background);
      for (let y = 24; y < 40; y++) px.fill(patch, y * 64 + 24, y * 64 + 40);
      return sharp(px, { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
    };
    const colourfulness = async (b64: string) => {
      const { data } = await sharp(Buffer.from(b64, 'base64')).raw().toBuffer({ resolveWithObject: true });
      let sum = 0;
      for (let i = 0; i < data.length; i += 3) sum += Math.max(data[i]!, data[i + 1]!, data[i + 2]!) - Math.min(data[i]!, data[i + 1]!, data[i + 2]!);
      return sum / (data.length / 3);
    };
    const negative = (await predictRaw(h.app, await square(0, 255), 'image/png', '?heatmap=inline')).json();
    const positive = (await predictRaw(h.app, await square(255, 0), 'image/png', '?heatmap=inline')).json();
    assert.ok(negative.probability < 0.1 && positive.probability > 0.9, `${negative.probability} / ${positive.probability}`);
    const [cn, cp] = [await colourfulness(negative.heatmap_png_base64), await colourfulness(positive.heatmap_png_base64)];
    assert.ok(cp > 20, `a confident positive is coloured (${cp.toFixed(1)})`);
    assert.ok(cn < 0.15 * cp, `a confident negative shows little colour even where its map peaks (${cn.toFixed(1)} vs ${cp.toFixed(1)})`);
  });

  test('the heatmap PNG by URL is the same picture as the inline one, for fresh and cached predictions', async () => {
    const image = await generateChestXray({ seed: 5, size: 256, pneumonia: true });
    const res = await predictRaw(h.app, image, 'image/png', '?heatmap=inline');
    const p = res.json();
    assert.equal(p.heatmap_method, 'cam');
    const inline = Buffer.from(p.heatmap_png_base64, 'base64');
    const byUrl = await h.app.inject({ method: 'GET', url: p.heatmap_url });
    assert.equal(byUrl.statusCode, 200);
    assert.equal(byUrl.headers['content-type'], 'image/png');
    assert.deepEqual(byUrl.rawPayload, inline);
    const meta = await sharp(inline).metadata();
    assert.equal(meta.width, 16);
    assert.equal(meta.channels, 3);

    const again = (await predictRaw(h.app, image, 'image/png', '?heatmap=inline')).json();
    assert.equal(again.cached, true);
    assert.deepEqual(Buffer.from(again.heatmap_png_base64, 'base64'), inline);
    const cachedUrl = await h.app.inject({ method: 'GET', url: again.heatmap_url });
    assert.deepEqual(cachedUrl.rawPayload, inline);
    const gateway = (await predictRaw(h.app, image, 'image/png', '', { 'x-forwarded-prefix': '/api/deployment' })).json();
    assert.match(gateway.heatmap_url, /^\/api\/deployment\/predictions\//);
  });

  test('every prediction is logged with input statistics, a 64-d embedding and an audit record', async () => {
    const image = await generateChestXray({ seed: 21, size: 240, format: 'jpeg' });
    const p = (await predictRaw(h.app, image, 'image/jpeg')).json();
    const rec = await h.app.inject({ method: 'GET', url: `/predictions/${p.prediction_id}` });
    assert.equal(rec.statusCode, 200, rec.body);
    const r = rec.json();
    assert.equal(r.probability, p.probability);
    assert.equal(r.model.version, 'v1');
    assert.equal(r.stats.sourceFormat, 'jpeg');
    assert.equal(r.stats.sourceWidth, 240);
    assert.equal(typeof r.stats.mean, 'number');
    assert.equal(r.embedding.length, 64);
    assert.equal(r.shadow, false);
    const store = new KyselyPredictionStore(h.platform.database);
    const page = await store.list({ model: 'pneumonia', limit: 1000 });
    assert.ok(page.items.some((x) => x.id === p.prediction_id));
    const audit = await h.platform.audit.query({ action: 'prediction.create', resource: `prediction:${p.prediction_id}` });
    assert.equal(audit.items.length, 1);
    assert.equal((await h.app.inject({ method: 'GET', url: '/predictions/nope' })).statusCode, 404);
  });

  test('bad inputs each get the error envelope with the right status', async () => {
    const corruptPng = Buffer.concat([png.subarray(0, 200)]);
    const noPixels = makeDicom({ width: 64, height: 64, pixels: new Uint8Array(64 * 64), bitsAllocated: 8, photometric: 'MONOCHROME2', withPixelData: false });
    const cases: [string, Uint8Array, string, number][] = [
      ['not an image', Buffer.from('hello, this is text and not an image at all'), 'application/octet-stream', 415],
      ['corrupt PNG', corruptPng, 'image/png', 422],
      ['DICOM without pixels', noPixels, 'application/dicom', 422],
      ['0-byte', Buffer.alloc(0), 'image/png', 400],
      ['oversized', Buffer.alloc(1024 * 1024 + 10, 1), 'image/jpeg', 413],
    ];
    for (const [what, data, type, status] of cases) {
      const res = await predictRaw(h.app, data, type);
      assert.equal(res.statusCode, status, `${what}: ${res.body}`);
      const body = res.json();
      assert.equal(typeof body.error.code, 'string', what);
      assert.equal(typeof body.error.message, 'string', what);
    }
    const bigPart = multipart([{ filename: 'big.jpeg', type: 'image/jpeg', data: Buffer.alloc(1024 * 1024 + 10, 1) }]);
    const big = await h.app.inject({ method: 'POST', url: '/predict', ...bigPart });
    assert.equal(big.statusCode, 413, big.body);
    const text = await h.app.inject({ method: 'POST', url: '/predict', payload: 'hi', headers: { 'content-type': 'text/plain' } });
    assert.equal(text.statusCode, 415);

    // A batch reports bad items one by one and still predicts the good ones.
    const mixed = multipart([
      { filename: 'good.png', type: 'image/png', data: png },
      { filename: 'bad.png', type: 'image/png', data: corruptPng },
    ]);
    const batch = (await h.app.inject({ method: 'POST', url: '/predict/batch', ...mixed })).json();
    assert.equal(batch.succeeded, 1);
    assert.equal(batch.results[1].error.code, 'UNPROCESSABLE');
    const unknownHash = await h.app.inject({ method: 'POST', url: '/predict/batch', payload: { hashes: ['0'.repeat(64)] } });
    assert.equal(unknownHash.statusCode, 200, unknownHash.body);
    assert.equal(unknownHash.json().results[0].error.code, 'NOT_FOUND');
  });

  test('v2 infer rejects a wrong shape, name or datatype with 400 and the envelope', async () => {
    const url = '/v2/models/pneumonia/infer';
    const bad = [
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 8, 8], data: new Array(64).fill(0) }] },
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 16, 16], data: new Array(255).fill(0) }] },
      { inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 1, 16, 16], data: new Array(256).fill(0) }] },
      { inputs: [{ name: 'input', datatype: 'INT64', shape: [1, 1, 16, 16], data: new Array(256).fill(0) }] },
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 16, 16], data: new Array(256).fill('x') }] },
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 16, 16], data: new Array(256).fill(0) }], outputs: [{ name: 'logits' }] },
    ];
    for (const payload of bad) {
      const res = await h.app.inject({ method: 'POST', url, payload });
      assert.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 120) + res.body);
      assert.equal(res.json().error.code, 'INVALID_INPUT');
    }
    const missing = await h.app.inject({ method: 'POST', url: '/v2/models/nope/infer', payload: bad[0] });
    assert.equal(missing.statusCode, 503);
    assert.equal((await h.app.inject({ method: 'GET', url: '/v2/models/pneumonia/ready' })).json().ready, true);
    assert.equal((await h.app.inject({ method: 'GET', url: '/v2/models/pneumonia/versions/v9/ready' })).statusCode, 503);
    const meta = (await h.app.inject({ method: 'GET', url: '/v2/models/pneumonia' })).json();
    assert.deepEqual(meta.inputs[0], { name: 'input', datatype: 'FP32', shape: [-1, 1, 16, 16] });
    assert.equal((await h.app.inject({ method: 'GET', url: '/v2/health/live' })).json().live, true);
  });

  test('a model without a features output falls back to occlusion sensitivity and says so', async () => {
    await loadModel(h.app, { path: NO_FEATURES_MODEL, name: 'nofeat', version: 'n1' });
    const image = await generateChestXray({ seed: 31, size: 128, pneumonia: true });
    const res = await predictRaw(h.app, image, 'image/png', '?model=nofeat');
    assert.equal(res.statusCode, 200, res.body);
    const p = res.json();
    assert.equal(p.heatmap_method, 'occlusion');
    assert.equal(p.model.name, 'nofeat');
    const png2 = await h.app.inject({ method: 'GET', url: p.heatmap_url });
    assert.equal(png2.statusCode, 200);
    const rec = (await h.app.inject({ method: 'GET', url: `/predictions/${p.prediction_id}` })).json();
    assert.equal(rec.embedding, null);
    const unloaded = await h.app.inject({ method: 'POST', url: '/models/unload', payload: { name: 'nofeat' } });
    assert.deepEqual(unloaded.json().unloaded, ['n1']);
  });

  test('loading a path outside the allowed roots is refused', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/models/load', payload: { path: '/etc/hostname' } });
    assert.equal(res.statusCode, 403, res.body);
    const notOnnx = await h.app.inject({ method: 'POST', url: '/models/load', payload: { path: new URL(import.meta.url).pathname, version: 'bad' } });
    assert.equal(notOnnx.statusCode, 422, notOnnx.body);
  });
});
