// `npm run bench -- scaled` (issue 16 targets): predict requests/s through NGINX with 1, 2 and 3
// deployment replicas, the CPU split between NGINX, the replicas and the engines, and the time a
// promotion takes to reach every replica. Runs the multi-host harness of test/scaled (root, Linux
// network namespaces, PostgreSQL, Redis, s3rver, NGINX); figures only, no pass/fail.
import { crc32 } from 'node:zlib';
import { generateChestXray } from '../src/core/imaging/index.js';
import { ScaledCluster, scaledUnavailable } from '../test/scaled/harness.js';
import { api, authFetch, closedLoop, poll, registerTiny, sleep } from '../test/scaled/client.js';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const MODEL = 'pneumonia';

/** The same PNG with a tEXt chunk carrying `n`: same pixels, a different sha256 (no result-cache hit). */
function variant(png: Buffer, n: number): Buffer {
  const iend = png.length - 12;
  const typeAndData = Buffer.concat([Buffer.from('tEXt'), Buffer.from(`n\0${n}`)]);
  const chunk = Buffer.alloc(12 + typeAndData.length - 4);
  chunk.writeUInt32BE(typeAndData.length - 4, 0);
  typeAndData.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(typeAndData), 4 + typeAndData.length);
  return Buffer.concat([png.subarray(0, iend), chunk, png.subarray(iend)]);
}

const why = scaledUnavailable();
if (why) {
  console.log(`scaled bench skipped: ${why}`);
  process.exit(0);
}

const cluster = new ScaledCluster({ replicas: { deployment: 3, 'model-registry': 1, 'data-pipeline': 1, monitoring: 1, training: 1 }, trainingWorkers: 0 });
try {
  const t0 = Date.now();
  await cluster.start();
  console.log(`cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${cluster.replicas.length} replicas, NGINX, PostgreSQL, Redis, s3rver in ${cluster.hosts.length} namespaces`);
  const http = api(`${cluster.gateway}/api`);
  const deployments = cluster.of('deployment');
  const servedBy = async (url: string) => {
    const body = (await (await authFetch(`${url}/models`)).json()) as { models: { name: string; version: string; alias: string | null }[] };
    return body.models.find((m) => m.name === MODEL && m.alias === 'production')?.version ?? null;
  };
  const promote = async (): Promise<number> => {
    const v = await registerTiny(http, MODEL, 0.9);
    const started = Date.now();
    await http.post(`/model-registry/models/${MODEL}/stage`, { version: v, stage: 'Production', force: true, reason: 'bench' }, 200);
    const answered = Date.now() - started;
    await Promise.all(deployments.map((r) => poll(`${r.name} serves v${v}`, async () => ((await servedBy(r.url)) === String(v) ? true : null), 30_000, 10)));
    console.log(`promotion to v${v}: stage call ${answered} ms, every replica serving it ${Date.now() - started} ms after the call`);
    return v;
  };
  await promote();

  const base = await generateChestXray({ seed: 'bench', size: 128 });
  let n = 0;
  const predict = () => http.raw('/deployment/predict', { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(variant(base, n++)) });
  console.log(`closed loop of ${CLIENTS} clients, ${SECONDS} s per configuration, every image distinct (no cache hits), tiny model (16×16)`);
  for (const k of [1, 2, 3]) {
    await cluster.route('deployment', deployments.slice(0, k).map((r) => r.name));
    const warm = closedLoop(CLIENTS, predict);
    await sleep(2000);
    await warm.stop();
    const cpu0 = cluster.cpuSeconds();
    const started = Date.now();
    const load = closedLoop(CLIENTS, predict);
    await sleep(SECONDS * 1000);
    const results = await load.stop();
    const wall = (Date.now() - started) / 1000;
    const cpu1 = cluster.cpuSeconds();
    const ok = results.filter((r) => r.status === 200);
    const lat = ok.map((r) => r.end - r.start).sort((a, b) => a - b);
    const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
    const split: Record<string, number> = {};
    for (const [name, secs] of Object.entries(cpu1)) {
      const group = name.startsWith('deployment-') ? 'deployment replicas' : name === 'nginx' ? 'nginx' : name === 'postgres' ? 'postgres' : name === 'redis' ? 'redis' : 'other services + s3rver';
      split[group] = (split[group] ?? 0) + (secs - (cpu0[name] ?? 0)) / wall;
    }
    const cpuLine = Object.entries(split).sort((a, b) => b[1] - a[1]).map(([g, c]) => `${g} ${c.toFixed(2)}`).join(', ');
    console.log(
      `${k} deployment replica${k > 1 ? 's' : ''}: ${(ok.length / wall).toFixed(1)} req/s (${results.length - ok.length} failed), p50 ${pct(0.5)} ms, p95 ${pct(0.95)} ms; CPU cores busy: ${cpuLine}`,
    );
  }
  await cluster.route('deployment', deployments.map((r) => r.name));
  await promote();
} finally {
  await cluster.close();
}
