/**
 * The hostile DICOM corpus against one process running the data pipeline and the deployment on
 * the same platform (as `npm start` does): every file gets a 4xx with a named reason from ingest,
 * /preprocess and /predict, nothing is stored, and `/health` of both services — polled over real
 * sockets the whole time — answers within 200 ms. Afterwards the process's RSS is back near its
 * baseline.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildDeploymentApp } from '../../src/deployment/app.js';
import { ImagePool } from '../../src/core/imaging/image-pool.js';
import { generateChestXray } from '../../src/core/imaging/index.js';
import { hostileDicomCorpus, validDicom } from '../core/imaging/hostile-dicom.js';
import { TINY_MODEL } from '../deployment/helpers.js';
import { form, openPipeline, storedImageObjects, type Pipeline } from './helpers.js';

const HEALTH_LIMIT_MS = 200;

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** Polls `/health` of every URL until stopped; returns the slowest answer seen, in ms. */
function pollHealth(urls: string[]): { stop(): Promise<{ worst: number; polls: number; failures: number }> } {
  let running = true;
  let worst = 0;
  let polls = 0;
  let failures = 0;
  const loops = urls.map(async (url) => {
    while (running) {
      const started = performance.now();
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
        if (res.status !== 200) failures++;
        await res.arrayBuffer();
      } catch {
        failures++;
      }
      worst = Math.max(worst, performance.now() - started);
      polls++;
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { worst, polls, failures };
    },
  };
}

describe('hostile DICOM corpus: every path refuses with a reason, the process stays responsive', () => {
  let p: Pipeline;
  let deployment: FastifyInstance;
  let dataUrl: string;
  let deployUrl: string;

  before(async () => {
    p = await openPipeline();
    deployment = await buildDeploymentApp(p.platform);
    const modelPath = path.join(p.home, 'tiny-model.onnx');
    copyFileSync(TINY_MODEL, modelPath);
    const load = await deployment.inject({ method: 'POST', url: '/models/load', payload: { path: modelPath, name: 'tiny', default: true } });
    assert.equal(load.statusCode, 200, load.body);
    dataUrl = await listen(p.app);
    deployUrl = await listen(deployment);
  });
  after(async () => {
    await deployment?.close();
    await p?.close();
  });

  test('ingest, /preprocess and /predict: 4xx naming the reason, nothing stored, /health within 200 ms', async () => {
    // Warm every path once with good files, so the baseline includes loaded modules and threads.
    const good = validDicom();
    const warm = await fetch(`${dataUrl}/ingest`, { method: 'POST', body: form({ label: 'NORMAL' }, [{ name: 'good.dcm', bytes: good }]) });
    assert.equal((await warm.json()).results[0].status, 'ingested');
    const png = await generateChestXray({ seed: 3, size: 256, format: 'png' });
    assert.equal((await fetch(`${deployUrl}/predict`, { method: 'POST', body: new Uint8Array(png), headers: { 'content-type': 'image/png' } })).status, 200);
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    const storedBefore = storedImageObjects(p.home).length;

    const corpus = hostileDicomCorpus();
    const poll = pollHealth([dataUrl, deployUrl]);
    const rows: string[] = [];
    let peak = baseline;
    try {
      for (const c of corpus) {
        const ingest = await fetch(`${dataUrl}/ingest`, { method: 'POST', body: form({ label: 'PNEUMONIA' }, [{ name: 'x.dcm', bytes: c.bytes }]) });
        assert.equal(ingest.status, 200, `${c.name}: batch answer`);
        const result = (await ingest.json()).results[0];
        assert.equal(result.status, 'rejected', `${c.name} must be refused at ingest, got ${JSON.stringify(result)}`);
        assert.ok(result.error.code !== 'INTERNAL', `${c.name}: ${result.error.message}`);
        assert.match(result.error.message, c.reason, `${c.name}: the reason is named`);

        const preprocess = await fetch(`${dataUrl}/preprocess`, { method: 'POST', body: new Uint8Array(c.bytes), headers: { 'content-type': 'application/dicom' } });
        assert.ok(preprocess.status >= 400 && preprocess.status < 500, `${c.name}: /preprocess ${preprocess.status}`);
        const predict = await fetch(`${deployUrl}/predict`, { method: 'POST', body: new Uint8Array(c.bytes), headers: { 'content-type': 'application/dicom' } });
        assert.ok(predict.status >= 400 && predict.status < 500, `${c.name}: /predict ${predict.status}`);
        const body = await predict.json();
        assert.equal(typeof body.error?.code, 'string');
        assert.match(body.error.message, c.reason, `${c.name}: /predict names the reason (${body.error.message})`);
        rows.push(`${c.name.padEnd(50)} ingest ${result.error.code}, /predict ${predict.status}: ${result.error.message.slice(0, 90)}`);
        peak = Math.max(peak, process.memoryUsage().rss);
      }
    } finally {
      const health = await poll.stop();
      console.log(rows.join('\n'));
      console.log(`/health: ${health.polls} polls, slowest ${health.worst.toFixed(1)} ms, ${health.failures} failures`);
      assert.equal(health.failures, 0);
      assert.ok(health.polls >= corpus.length, 'health was polled throughout');
      assert.ok(health.worst < HEALTH_LIMIT_MS, `slowest /health ${health.worst.toFixed(1)} ms (limit ${HEALTH_LIMIT_MS})`);
    }
    assert.equal(storedImageObjects(p.home).length, storedBefore, 'nothing stored for a refused file');

    global.gc?.();
    await new Promise((r) => setTimeout(r, 500));
    const after = process.memoryUsage().rss;
    const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
    console.log(`RSS: baseline ${mb(baseline)} MiB, peak ${mb(peak)} MiB, after ${mb(after)} MiB`);
    assert.ok(after - baseline < 256 * 1024 * 1024, `RSS ${mb(after)} MiB vs baseline ${mb(baseline)} MiB`);
  });
});

describe('image pool limits', () => {
  test('a decode over the wall-time limit is refused with 422 naming the limit; the thread is replaced', async () => {
    const pool = new ImagePool({ threads: 1, timeoutMs: 100 });
    try {
      // A 6000×6000 noisy PNG takes well over 100 ms to decode and resize on any machine here.
      const sharp = (await import('sharp')).default;
      const noise = new Uint8Array(6000 * 6000);
      for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
      const big = await sharp(noise, { raw: { width: 6000, height: 6000, channels: 1 } }).png({ compressionLevel: 1 }).toBuffer();
      await assert.rejects(pool.run(big, { size: 224, mode: 'letterbox', pad: 0, format: 'png' }), (err: { code?: string; message?: string }) => {
        assert.equal(err.code, 'UNPROCESSABLE');
        assert.match(err.message ?? '', /100 ms limit/);
        return true;
      });
      // The replacement thread (started at once; give it time to load its modules) serves the next task.
      await new Promise((r) => setTimeout(r, 3_000));
      const small = await generateChestXray({ seed: 4, size: 128, format: 'png' });
      const out = await pool.run(small, { size: 64, mode: 'letterbox', pad: 0, format: 'png' });
      assert.equal(out.pixels.length, 64 * 64);
    } finally {
      await pool.close();
    }
  });

  test('the queue is bounded: beyond it QUEUE_FULL (503), and queued tasks do not count against the time limit', async () => {
    const pool = new ImagePool({ threads: 1, maxQueue: 2, timeoutMs: 5_000 });
    try {
      const img = await generateChestXray({ seed: 5, size: 512, format: 'png' });
      const spec = { size: 224, mode: 'letterbox' as const, pad: 0, format: 'png' as const };
      const runs = Array.from({ length: 3 }, () => pool.run(img, spec));
      await assert.rejects(pool.run(img, spec), (err: { code?: string }) => err.code === 'QUEUE_FULL');
      const done = await Promise.all(runs);
      assert.equal(done.length, 3);
    } finally {
      await pool.close();
    }
  });
});
