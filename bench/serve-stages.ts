/**
 * Where a /predict request's CPU goes (issue 20 item 1): each stage of the serving path measured
 * alone, one request at a time, as CPU ms of this process (all its threads) per call, then the
 * whole request in-process through the deployment app (`app.inject`: routing, schemas, cache
 * lookup, decode worker, inference thread, heatmap, prediction and audit records with their
 * durable wait). Compare with `npm run bench:serve`'s "CPU ms/req service" for what HTTP and
 * concurrency add. CPU time, not wall time, so the figures hold up on a shared machine.
 *
 * Run: `npx tsx bench/serve-stages.ts [--model file.onnx]` (default: the shipped model).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { loadConfig } from '../src/core/config/index.js';
import { generateChestXray, imageStats, parsePreprocessSpec, preprocess, toModelInput } from '../src/core/imaging/index.js';
import { ImagePool } from '../src/core/imaging/image-pool.js';
import { EmbeddingProjector } from '../src/core/ml/embedding.js';
import { classActivationMap } from '../src/core/ml/index.js';
import { openPlatform } from '../src/core/platform.js';
import { buildDeploymentApp } from '../src/deployment/app.js';
import { encodeHeatmapSource, heatmapKey } from '../src/deployment/service/heatmaps.js';
import { OrtSession } from '../src/deployment/service/ort-session.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const o = new Command('serve-stages').option('--model <file>', 'ONNX model', path.join(ROOT, 'models/pneumonia/model.onnx')).parse().opts<{ model: string }>();

/** CPU ms per call (after a warm-up) and wall ms per call. */
async function cost(n: number, f: (i: number) => unknown): Promise<{ cpu: number; wall: number }> {
  for (let i = 0; i < Math.min(20, n); i++) await f(i);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await f(i);
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000 / n, wall: (performance.now() - t0) / n };
}
const row = (what: string, r: { cpu: number; wall: number }) => console.log(`${what.padEnd(58)} ${r.cpu.toFixed(3).padStart(7)} ${r.wall.toFixed(3).padStart(8)}`);

const bytes = readFileSync(o.model);
const options: InferenceSession.SessionOptions = { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential', extra: { session: { intra_op: { allow_spinning: '0' } } } };
// The model's own input side (the shipped model is 128²): preprocessing targets it, as the service does.
const probe = await InferenceSession.create(bytes, options);
const shape = probe.inputMetadata[0]?.isTensor ? probe.inputMetadata[0].shape : [];
const size = typeof shape[2] === 'number' ? shape[2] : 224;
await probe.release();
const spec = parsePreprocessSpec({ size });
const jpegs = new Map<number, Buffer>();
for (const side of [224, 2048]) jpegs.set(side, await generateChestXray({ seed: 7, size: side, pneumonia: true, format: 'jpeg', quality: 90 }));

console.log(`model ${path.basename(o.model)} (input ${size}²); CPU ms = this process, all threads, per call`);
console.log(`${'stage'.padEnd(58)} ${'CPU ms'.padStart(7)} ${'wall ms'.padStart(8)}`);
for (const side of [224, 2048]) row(`decode + preprocess ${side}² JPEG (sharp, this thread)`, await cost(side > 1000 ? 30 : 200, () => preprocess(jpegs.get(side)!, spec)));
const pixels = (await preprocess(jpegs.get(224)!, spec)).pixels;
row(`image statistics (imageStats, ${size}²)`, await cost(500, () => imageStats(pixels, size, size)));
row(`model input (pixels / 255, ${size}²)`, await cost(500, () => toModelInput(pixels, size)));
const pool = new ImagePool({ threads: 1 });
for (const side of [224, 2048]) row(`decode worker task ${side}² (hop + decode + stats + input)`, await cost(side > 1000 ? 30 : 200, () => pool.run(jpegs.get(side)!, spec)));
await pool.close();
row('sha256 of a 224² JPEG', await cost(500, () => createHash('sha256').update(jpegs.get(224)!).digest('hex')));

const input = toModelInput(pixels, size);
const bare = await InferenceSession.create(bytes, options);
row('ORT batch 1, session on this thread (bare)', await cost(200, () => bare.run({ [bare.inputNames[0]!]: new Tensor('float32', input, [1, 1, size, size]) })));
await bare.release();
const session = await OrtSession.create(bytes, options);
const fetches = session.outputMetadata.map((m) => m.name);
const out = await session.run({ input: { data: input, dims: [1, 1, size, size] } }, fetches);
row('ORT batch 1, in its inference thread (the service)', await cost(200, () => session.run({ input: { data: input, dims: [1, 1, size, size] } }, fetches)));
await session.release();
const features = out.features;
if (features) {
  const [, c, h, w] = features.dims as [number, number, number, number];
  const weight = new Float32Array(c).fill(0.01);
  row(`class activation map (${c}×${h}×${w})`, await cost(500, () => classActivationMap(features.data, c, h, w, weight)));
  const projector = new EmbeddingProjector();
  row('embedding (pool + 64-d projection)', await cost(500, () => projector.embed(features.data, [c, h, w])));
  row('heatmap source encoding', await cost(500, () => encodeHeatmapSource({ grid: new Float32Array(h * w), h, w, size, pixels })));
}

const home = mkdtempSync(path.join(tmpdir(), 'xray-stages-'));
try {
  const platform = await openPlatform(loadConfig({ XRAY_HOME: home, XRAY_LOG_LEVEL: 'warn', XRAY_SEED_MODEL: 'off', XRAY_IMPORT_ROOT: path.dirname(path.resolve(o.model)) }));
  const source = encodeHeatmapSource({ grid: new Float32Array(49), h: 7, w: 7, size, pixels });
  row('heatmap source saved to the object store', await cost(200, (i) => platform.objects.put(heatmapKey('m', '1', String(i + Math.random())), source)));
  const app = await buildDeploymentApp(platform);
  const load = await app.inject({ method: 'POST', url: '/models/load', payload: { path: path.resolve(o.model), name: 'bench', version: '1', default: true } });
  if (load.statusCode !== 200) throw new Error(`load failed: ${load.body}`);
  for (const side of [224, 2048]) {
    const jpeg = jpegs.get(side)!;
    let k = 0;
    const r = await cost(side > 1000 ? 30 : 150, async () => {
      // A distinct comment per request, so the result cache never answers.
      const body = Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xfe, 0x00, 0x0a]), Buffer.from(String(k++).padStart(8, '0')), jpeg.subarray(2)]);
      const res = await app.inject({ method: 'POST', url: '/predict?model=bench&version=1', headers: { 'content-type': 'image/jpeg' }, payload: body });
      if (res.statusCode !== 200) throw new Error(res.body);
    });
    row(`whole /predict ${side}², in-process (app.inject), one at a time`, r);
  }
  await app.close();
  await platform.close();
} finally {
  rmSync(home, { recursive: true, force: true });
}

