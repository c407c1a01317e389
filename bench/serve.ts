/**
 * Deployment service benchmark (issue 6 targets, with an EfficientNet-B0-class model, heatmap
 * included: 224² JPEG at 8 clients ≥ 90 req/s; 2048² JPEG at 8 clients ≥ 60 req/s; one client,
 * 224²: p50 ≤ 11 ms; RSS ≤ 500 MB with one model loaded).
 *
 * 1. Bare onnxruntime-node images/s for the model at batch 1 and 16 (the ceiling), in this process.
 * 2. The deployment service in a child process (so its RSS is its own and the load generator does
 *    not share its event loop) on a random port, with the model loaded with dynamic batching on
 *    (max 4 — the CPU default — or --max-batch, 3 ms); after those runs a second copy with
 *    batching off (max 1) is loaded for the comparison rows.
 * 3. Keep-alive HTTP clients at concurrency 1, 8, 32 posting synthetic chest X-ray JPEGs
 *    (~2048² and 224², generateChestXray) — every request has distinct bytes (a JPEG comment),
 *    so the prediction cache never answers. Prints req/s, p50/p95/p99, mean batch size, mean
 *    stage timings, errors, and the ceiling beside each row; then the service's RSS.
 *
 * Run: `npm run bench:serve -- [--model file.onnx] [--seconds 4] [--concurrency 1,8,32]
 *   [--sizes 224,2048] [--heatmap url|inline] [--max-batch 4]` (model also from XRAY_BENCH_MODEL; default: the
 * test fixture test/fixtures/tiny-model.onnx — tiny, so it measures the service's overhead only).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { InferenceSession, Tensor } from 'onnxruntime-node';

const ROOT = path.resolve(import.meta.dirname, '..');
const DEFAULT_MODEL = path.join(ROOT, 'test/fixtures/tiny-model.onnx');
const MB = 1024 * 1024;

export interface ServeBenchOptions {
  model: string;
  seconds: number;
  concurrency: number[];
  sizes: number[];
  heatmap: 'url' | 'inline';
  /** max_batch_size of the batched run (default 4, the service's CPU default). */
  maxBatch: number;
}

export interface ServeBenchRow {
  size: number;
  batching: 'on' | 'off';
  concurrency: number;
  requests: number;
  errors: number;
  reqPerSec: number;
  p50: number;
  p95: number;
  p99: number;
  meanBatch: number;
  /** Time responses waited for their audit/prediction records (group commit), from the service's histogram. */
  durableWait: { mean: number; p99: number; n: number };
  stages: Record<string, number>;
}

export interface ServeBenchResult {
  model: string;
  inputSize: number;
  cores: number;
  ortBatch1: number;
  ortBatch16: number;
  rows: ServeBenchRow[];
  rssIdleMb: number;
  rssPeakMb: number;
}

// ——— bare ORT ceiling ———

async function bareOrt(modelPath: string): Promise<{ size: number; batch1: number; batch16: number }> {
  const session = await InferenceSession.create(readFileSync(modelPath), {
    intraOpNumThreads: availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // The service's settings: no intra-op spinning (see ModelOptions.spinning).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  const shape = session.inputMetadata[0]?.isTensor ? session.inputMetadata[0].shape : [];
  const size = typeof shape[2] === 'number' ? shape[2] : 224;
  const input = session.inputNames[0]!;
  const rate = async (n: number): Promise<number> => {
    const data = new Float32Array(n * size * size).map((_, i) => ((i * 2654435761) % 255) / 255);
    const feeds = { [input]: new Tensor('float32', data, [n, 1, size, size]) };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    let images = 0;
    const start = performance.now();
    while (performance.now() - start < 1500 || images < 4 * n) {
      await session.run(feeds);
      images += n;
    }
    return (images / (performance.now() - start)) * 1000;
  };
  const batch1 = await rate(1);
  const batch16 = await rate(16);
  await session.release();
  return { size, batch1, batch16 };
}

// ——— the service, in a child process ———

async function childMain(): Promise<void> {
  const { loadConfig } = await import('../src/core/config/index.js');
  const { openPlatform } = await import('../src/core/platform.js');
  const { buildDeploymentApp } = await import('../src/deployment/app.js');
  const home = process.env.BENCH_HOME!;
  const platform = await openPlatform(
    loadConfig({ XRAY_HOME: home, XRAY_LOG_LEVEL: 'warn', XRAY_SEED_MODEL: 'off', XRAY_IMPORT_ROOT: process.env.BENCH_IMPORT_ROOT!, XRAY_MAX_UPLOAD_MB: '64' }),
  );
  const app = await buildDeploymentApp(platform);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
  process.on('message', (msg: { cmd: string }) => {
    if (msg.cmd === 'stop') {
      void (async () => {
        await app.close();
        await platform.close();
        process.exit(0);
      })();
    }
  });
}

function rssOf(pid: number): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: 0, peak: 0 };
  }
}

// ——— HTTP client ———

interface Reply {
  status: number;
  body: string;
}

function request(agent: http.Agent, port: number, method: string, url: string, body?: Buffer, type = 'application/json'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: url, agent, headers: body ? { 'content-type': type, 'content-length': body.length } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A distinct but equally decodable JPEG: a COM segment right after SOI. */
function withComment(jpeg: Buffer, n: number): Buffer {
  const text = Buffer.from(`bench-${n}`);
  const seg = Buffer.alloc(4 + text.length);
  seg.writeUInt16BE(0xfffe, 0);
  seg.writeUInt16BE(text.length + 2, 2);
  text.copy(seg, 4);
  return Buffer.concat([jpeg.subarray(0, 2), seg, jpeg.subarray(2)]);
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function modelStats(agent: http.Agent, port: number, version: string): Promise<{ batches: number; items: number }> {
  const r = await request(agent, port, 'GET', '/models');
  const m = (JSON.parse(r.body).models as { version: string; stats: { batches: number; items: number } }[]).find((x) => x.version === version);
  return m?.stats ?? { batches: 0, items: 0 };
}

/** The group-commit barrier's histogram (xray_durable_wait_seconds) from /metrics: bucket upper bounds (s) → cumulative count, sum, count. */
async function durableWaits(agent: http.Agent, port: number): Promise<{ buckets: Map<number, number>; sum: number; count: number }> {
  const text = (await request(agent, port, 'GET', '/metrics')).body;
  const buckets = new Map<number, number>();
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    const b = /^xray_durable_wait_seconds_bucket\{.*le="([^"]+)".*\} (\S+)/.exec(line);
    if (b) buckets.set(b[1] === '+Inf' ? Infinity : Number(b[1]), Number(b[2]));
    else if (line.startsWith('xray_durable_wait_seconds_sum')) sum = Number(line.split(' ').pop());
    else if (line.startsWith('xray_durable_wait_seconds_count')) count = Number(line.split(' ').pop());
  }
  return { buckets, sum, count };
}

/** Mean and the bucket bound holding the 99th percentile of the waits between two scrapes, in ms. */
function waitSummary(before: Awaited<ReturnType<typeof durableWaits>>, after: Awaited<ReturnType<typeof durableWaits>>): { mean: number; p99: number; n: number } {
  const n = after.count - before.count;
  if (n <= 0) return { mean: 0, p99: 0, n: 0 };
  let p99 = Infinity;
  for (const [le, c] of [...after.buckets].sort((a, b) => a[0] - b[0])) {
    if (c - (before.buckets.get(le) ?? 0) >= 0.99 * n) {
      p99 = le;
      break;
    }
  }
  return { mean: ((after.sum - before.sum) / n) * 1000, p99: p99 * 1000, n };
}

async function drive(
  port: number,
  images: Buffer[],
  version: string,
  concurrency: number,
  seconds: number,
  heatmap: string,
  counter: { n: number },
): Promise<Omit<ServeBenchRow, 'size' | 'batching' | 'concurrency'>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = `/predict?model=bench&version=${version}&heatmap=${heatmap}`;
  const post = (i: number) => request(agent, port, 'POST', url, withComment(images[i % images.length]!, counter.n++), 'image/jpeg');
  // Warm-up: one round per client.
  await Promise.all(Array.from({ length: concurrency }, (_, i) => post(i)));
  const before = await modelStats(agent, port, version);
  const waitsBefore = await durableWaits(agent, port);
  const latencies: number[] = [];
  const stageSums: Record<string, number> = {};
  let errors = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, k) => {
      let i = k;
      while (performance.now() < deadline) {
        const t = performance.now();
        const res = await post(i);
        const ms = performance.now() - t;
        i += concurrency;
        if (res.status !== 200) {
          errors++;
          continue;
        }
        latencies.push(ms);
        const timings = (JSON.parse(res.body) as { timings_ms: Record<string, number> }).timings_ms;
        for (const [key, v] of Object.entries(timings)) stageSums[key] = (stageSums[key] ?? 0) + v;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const after = await modelStats(agent, port, version);
  const durable = waitSummary(waitsBefore, await durableWaits(agent, port));
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const batches = after.batches - before.batches;
  return {
    requests: latencies.length,
    errors,
    reqPerSec: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p95: percentile(latencies, 0.95),
    p99: percentile(latencies, 0.99),
    meanBatch: batches ? (after.items - before.items) / batches : 0,
    durableWait: durable,
    stages: Object.fromEntries(Object.entries(stageSums).map(([k, v]) => [k, v / Math.max(1, latencies.length)])),
  };
}

async function synthImages(size: number, count: number): Promise<Buffer[]> {
  const { generateChestXray } = await import('../src/core/imaging/index.js');
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(await generateChestXray({ seed: 500 + i, size, pneumonia: i % 2 === 1, format: 'jpeg', quality: 90 }));
  return out;
}

export async function runServeBench(opts: ServeBenchOptions, log: (line: string) => void = console.log): Promise<ServeBenchResult> {
  const model = path.resolve(opts.model);
  if (!existsSync(model)) throw new Error(`model file ${model} does not exist`);
  const cores = availableParallelism();
  log(`model: ${model} (${(readFileSync(model).length / MB).toFixed(1)} MB), ${cores} cores`);
  const ceiling = await bareOrt(model);
  log(`bare onnxruntime-node at ${ceiling.size}²: batch 1 ${ceiling.batch1.toFixed(1)} img/s, batch 16 ${ceiling.batch16.toFixed(1)} img/s`);

  const images = new Map<number, Buffer[]>();
  for (const size of opts.sizes) {
    const t = performance.now();
    images.set(size, await synthImages(size, size > 1000 ? 2 : 16));
    log(`generated ${images.get(size)!.length} synthetic ${size}² JPEGs (${images.get(size)![0]!.length} bytes each, ${((performance.now() - t) / 1000).toFixed(1)} s)`);
  }

  const home = mkdtempSync(path.join(tmpdir(), 'xray-bench-serve-'));
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve-child'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_HOME: home, BENCH_IMPORT_ROOT: path.dirname(model) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`the service exited early (${code})`)));
    });
    const agent = new http.Agent({ keepAlive: true });
    const load = async (version: string, maxBatch: number, makeDefault: boolean) => {
      const body = Buffer.from(
        JSON.stringify({ path: model, name: 'bench', version, default: makeDefault, batching: { max_batch_size: maxBatch, max_queue_delay_ms: 3, max_queue_size: 256 } }),
      );
      const r = await request(agent, port, 'POST', '/models/load', body);
      if (r.status !== 200) throw new Error(`loading the model failed: ${r.status} ${r.body}`);
      return JSON.parse(r.body) as { heatmap_method: string; execution_providers: string[] };
    };
    const info = await load('batched', opts.maxBatch, true);
    const idle = rssOf(child.pid!);
    log(`service RSS with one model loaded, idle: ${(idle.rss / MB).toFixed(0)} MB; heatmap: ${info.heatmap_method} (${opts.heatmap === 'inline' ? 'PNG rendered per request' : 'map computed per request, PNG rendered on GET'}); EP ${info.execution_providers.join(',')}; batching on = max ${opts.maxBatch}, 3 ms`);

    // Peak RSS while only the batched copy is loaded (sampled; VmHWM would include the later second copy).
    let peakOne = idle.rss;
    const sampler = setInterval(() => (peakOne = Math.max(peakOne, rssOf(child.pid!).rss)), 100);
    const rows: ServeBenchRow[] = [];
    const counter = { n: 0 };
    log('');
    log('size   batching clients    req/s     p50     p95     p99  batch  errors | preprocess  queue  infer  heatmap (mean ms) | durable wait mean/p99≤ ms | ORT ceiling b1/b16 img/s');
    for (const batching of ['on', 'off'] as const) {
      if (batching === 'off') {
        clearInterval(sampler);
        await load('unbatched', 1, false);
      }
      for (const size of opts.sizes) {
        for (const c of opts.concurrency) {
          const r = await drive(port, images.get(size)!, batching === 'on' ? 'batched' : 'unbatched', c, opts.seconds, opts.heatmap, counter);
          const row: ServeBenchRow = { size, batching, concurrency: c, ...r };
          rows.push(row);
          const s = r.stages;
          log(
            `${String(size).padEnd(6)} ${batching.padEnd(8)} ${String(c).padStart(7)} ${r.reqPerSec.toFixed(1).padStart(8)} ${r.p50.toFixed(1).padStart(7)} ${r.p95.toFixed(1).padStart(7)} ${r.p99.toFixed(1).padStart(7)} ${r.meanBatch.toFixed(2).padStart(6)} ${String(r.errors).padStart(7)} | ${(s.preprocess ?? 0).toFixed(2).padStart(10)} ${(s.queue ?? 0).toFixed(2).padStart(6)} ${(s.inference ?? 0).toFixed(2).padStart(6)} ${(s.heatmap ?? 0).toFixed(2).padStart(8)}            | ${r.durableWait.mean.toFixed(2).padStart(9)}/${(Number.isFinite(r.durableWait.p99) ? r.durableWait.p99.toFixed(1) : '>1000').padStart(6)}           | ${ceiling.batch1.toFixed(0)}/${ceiling.batch16.toFixed(0)}`,
          );
        }
      }
    }
    clearInterval(sampler);
    const end = rssOf(child.pid!);
    log('');
    log(`service RSS: one model loaded: idle ${(idle.rss / MB).toFixed(0)} MB, peak under load ${(peakOne / MB).toFixed(0)} MB; with the second (unbatched) copy too: peak ${(end.peak / MB).toFixed(0)} MB`);
    const find = (size: number, c: number) => rows.find((r) => r.size === size && r.concurrency === c && r.batching === 'on');
    const target = (what: string, row: ServeBenchRow | undefined, value: (r: ServeBenchRow) => number, goal: number, higher: boolean, unit: string) => {
      if (!row) return;
      const v = value(row);
      log(`  ${what}: ${v.toFixed(1)} ${unit} (target ${higher ? '≥' : '≤'} ${goal}; ${(higher ? v / goal : goal / v).toFixed(2)}x of target${(higher ? v >= goal : v <= goal) ? '' : ' — MISSED'})`);
    };
    log(`targets (issue 6, for an EfficientNet-B0-class model on 2 cores; this run: ${path.basename(model)}, ${cores} cores):`);
    target('224² JPEG, 8 clients', find(224, 8), (r) => r.reqPerSec, 90, true, 'req/s');
    target('2048² JPEG, 8 clients', find(2048, 8), (r) => r.reqPerSec, 60, true, 'req/s');
    target('224² JPEG, 1 client, p50', find(224, 1), (r) => r.p50, 11, false, 'ms');
    log(`  RSS with one model: ${(peakOne / MB).toFixed(0)} MB peak (target ≤ 500 MB${peakOne / MB <= 500 ? '' : ' — MISSED'})`);
    agent.destroy();
    return { model, inputSize: ceiling.size, cores, ortBatch1: ceiling.batch1, ortBatch16: ceiling.batch16, rows, rssIdleMb: idle.rss / MB, rssPeakMb: peakOne / MB };
  } finally {
    child.send?.({ cmd: 'stop' });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 10_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    rmSync(home, { recursive: true, force: true });
  }
}

function parseList(v: string): number[] {
  const out = v.split(',').map((x) => Number(x.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`not a list of positive integers: ${v}`);
  return out;
}

if (process.argv.includes('--serve-child')) {
  await childMain();
} else if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const program = new Command('bench:serve')
    .option('--model <file>', 'ONNX model to serve', process.env.XRAY_BENCH_MODEL || DEFAULT_MODEL)
    .option('--seconds <n>', 'seconds per run', '4')
    .option('--concurrency <list>', 'client counts', '1,8,32')
    .option('--sizes <list>', 'JPEG sides', '224,2048')
    .option('--heatmap <mode>', "'url' (map per request, PNG on GET) or 'inline' (PNG per request)", 'url')
    .option('--max-batch <n>', 'max_batch_size with batching on', '4')
    .parse();
  const o = program.opts<{ model: string; seconds: string; concurrency: string; sizes: string; heatmap: string; maxBatch: string }>();
  if (o.model === DEFAULT_MODEL) console.log('no --model / XRAY_BENCH_MODEL given: using the tiny test fixture (measures service overhead, not a real network)');
  await runServeBench({
    model: o.model,
    seconds: Number(o.seconds),
    concurrency: parseList(o.concurrency),
    sizes: parseList(o.sizes),
    heatmap: o.heatmap === 'inline' ? 'inline' : 'url',
    maxBatch: parseList(o.maxBatch)[0]!,
  });
}
