/**
 * Deployment service benchmark (issue 20 targets, each printed with its figure and its fraction of
 * the bare ONNX Runtime ceiling measured in the same run):
 *   - one client, 224² JPEG: p50 ≤ bare ORT batch-1 time + bare decode time + 2 ms;
 *   - 8 clients, 224² JPEG: ≥ 85% of the bare ORT ceiling (best batch);
 *   - 8 clients, 2048² JPEG: ≥ 70% of that ceiling (decode-bound);
 *   - RSS with one model ≤ 400 MB.
 *
 * 1. The ceiling, in this process: bare onnxruntime-node images/s at batch 1, 4 and 16 (best
 *    batch = the ceiling), with the service's session settings except that ORT gets every core
 *    (the engine's own best here; the service gives it half, XRAY_INFERENCE_THREADS); and the bare decode time of each
 *    JPEG size (the same `preprocess`, one image at a time, no worker hop).
 * 2. The service in a child process (its RSS is its own and the load generator does not share its
 *    event loop) on a random port: by default the deployment app alone with the model loaded from
 *    the file (service-default batching, then a second copy with batching off for comparison
 *    rows); with --platform the whole `npm start` platform (src/main.ts, all five services and the
 *    gateway, shipped model seeded into a fresh XRAY_HOME, default log level), driven at the
 *    deployment's /predict.
 * 3. Keep-alive HTTP clients at each concurrency posting synthetic chest X-ray JPEGs — every
 *    request has distinct bytes (a JPEG comment), so the prediction cache never answers. Prints
 *    req/s, p50/p95/p99, mean batch size, mean stage timings, the service's CPU ms per request
 *    (all its threads: steadier than wall time on a shared machine), how much of it ran on its
 *    event loop (the main thread: HTTP, routing, records, hand-offs; decode and ORT run on other
 *    threads) and its RSS. Beside each
 *    8-client target, the CPU bound: cores / (ORT CPU + decode CPU per image), what a server doing
 *    nothing else could reach.
 *
 * Run: `npm run bench:serve -- [--model file.onnx] [--platform [--compiled]] [--seconds 4] [--concurrency 1,8]
 *   [--sizes 224,2048] [--heatmap url|inline] [--max-batch n]`. The model defaults to
 * XRAY_BENCH_MODEL, else the shipped model (models/pneumonia/model.onnx); --platform always serves
 * the shipped model. On a shared machine run it twice: ratios, not absolute figures, carry over.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { InferenceSession, Tensor } from 'onnxruntime-node';

const ROOT = path.resolve(import.meta.dirname, '..');
const DEFAULT_MODEL = path.join(ROOT, 'models/pneumonia/model.onnx');
const MB = 1024 * 1024;

export interface ServeBenchOptions {
  model: string;
  seconds: number;
  concurrency: number[];
  sizes: number[];
  heatmap: 'url' | 'inline';
  /** max_batch_size of the batched run (default: the service's default). */
  maxBatch?: number;
  /** Run the whole `npm start` platform instead of the deployment app alone. */
  platform?: boolean;
  /** Run the compiled build (`npm run build`, then `xray serve [deployment]` on dist/, as the images do) instead of tsx. */
  compiled?: boolean;
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
  /** CPU ms the service process used per answered request (all its threads; steadier than wall time on a shared machine). */
  serviceCpuMs: number;
  /** Of that, the service's main thread (the event loop: HTTP, routing, records, hops; not decode or ORT). */
  mainCpuMs: number;
  /** CPU ms the load generator (this process) used per request. */
  clientCpuMs: number;
}

export interface Ceiling {
  size: number;
  /** Bare ORT images/s by batch size. */
  rates: Record<number, number>;
  /** CPU ms bare ORT used per image at its best batch (all intra-op threads). */
  cpuMsPerImage: number;
  batch1Ms: number;
  best: number;
  /** Bare decode + preprocess ms (median, one image at a time) by JPEG side. */
  decodeMs: Record<number, number>;
  /** Bare decode + preprocess CPU ms per image by JPEG side. */
  decodeCpuMs: Record<number, number>;
}

export interface ServeBenchResult {
  model: string;
  mode: 'service' | 'platform';
  cores: number;
  ceiling: Ceiling;
  rows: ServeBenchRow[];
  rssIdleMb: number;
  rssPeakMb: number;
}

// ——— the ceiling: bare ORT and bare decode ———

const CEILING_BATCHES = [1, 4, 16];

async function bareOrt(modelPath: string): Promise<{ size: number; rates: Record<number, number>; cpu: Record<number, number> }> {
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
    const cpu0 = cpuMsOf(process.pid);
    while (performance.now() - start < 1500 || images < 4 * n) {
      await session.run(feeds);
      images += n;
    }
    cpu[n] = (cpuMsOf(process.pid) - cpu0) / images;
    return (images / (performance.now() - start)) * 1000;
  };
  const rates: Record<number, number> = {};
  const cpu: Record<number, number> = {};
  for (const n of CEILING_BATCHES) rates[n] = await rate(n);
  await session.release();
  return { size, rates, cpu };
}

/** Median wall ms and mean CPU ms of decode + preprocess, one image at a time, in this process. */
async function bareDecode(jpegs: Buffer[], size: number): Promise<{ ms: number; cpuMs: number }> {
  const { preprocess, toModelInput } = await import('../src/core/imaging/index.js');
  const spec = { size };
  const times: number[] = [];
  let cpu0 = 0;
  for (let round = 0; round < 4; round++) {
    if (round === 1) cpu0 = cpuMsOf(process.pid);
    for (const jpeg of jpegs) {
      const t = performance.now();
      toModelInput((await preprocess(jpeg, spec)).pixels, size);
      if (round > 0) times.push(performance.now() - t);
    }
  }
  return { ms: percentile(times.sort((a, b) => a - b), 0.5), cpuMs: (cpuMsOf(process.pid) - cpu0) / times.length };
}

// ——— the service, in a child process ———

async function childMain(): Promise<void> {
  const { loadConfig } = await import('../src/core/config/index.js');
  const { openPlatform } = await import('../src/core/platform.js');
  const { buildDeploymentApp } = await import('../src/deployment/app.js');
  const home = process.env.BENCH_HOME!;
  const platform = await openPlatform(
    // The caller's XRAY_* settings (XRAY_INFERENCE_THREADS, XRAY_DECODE_THREADS, …) apply.
    loadConfig({ ...process.env, XRAY_HOME: home, XRAY_LOG_LEVEL: 'error', XRAY_SEED_MODEL: 'off', XRAY_IMPORT_ROOT: process.env.BENCH_IMPORT_ROOT!, XRAY_MAX_UPLOAD_MB: '64' }),
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

/** Free TCP ports for the platform's six listeners (bound then released). */
async function freePorts(n: number): Promise<number[]> {
  const { createServer } = await import('node:net');
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Server>((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => resolve(s)); })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function startChild(opts: ServeBenchOptions, model: string, home: string): Promise<{ child: ChildProcess; port: number }> {
  if (!opts.platform && opts.compiled) {
    // What the deployment image runs: `xray serve deployment` on the compiled build; the model is
    // then loaded from the file (POST /models/load). No registry runs: its warnings are expected.
    const [port, registry] = await freePorts(2);
    const child = fork(path.join(ROOT, 'bin/xray.js'), ['serve', 'deployment'], {
      execArgv: process.env.XRAY_BENCH_CHILD_ARGS?.split(' ').filter(Boolean) ?? [],
      env: {
        ...process.env,
        XRAY_COMPILED: '1',
        // as the service image sets it (deploy/docker/Dockerfile)
        MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
        XRAY_HOME: home,
        XRAY_LOG_LEVEL: 'error',
        XRAY_SEED_MODEL: 'off',
        XRAY_IMPORT_ROOT: path.dirname(model),
        XRAY_MAX_UPLOAD_MB: '64',
        XRAY_PORT_DEPLOYMENT: String(port),
        XRAY_SERVICE_URLS: `model-registry=http://127.0.0.1:${registry}`,
      },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const agent = new http.Agent({ keepAlive: false });
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`the deployment exited early (${child.exitCode})`);
      if (await request(agent, port!, 'GET', '/health').then((r) => r.status === 200, () => false)) break;
      if (i > 600) throw new Error('the deployment did not start within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    return { child, port: port! };
  }
  if (!opts.platform) {
    const child = fork(fileURLToPath(import.meta.url), ['--serve-child'], {
      // e.g. XRAY_BENCH_CHILD_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' for a profile of every thread
      execArgv: ['--import', 'tsx', ...(process.env.XRAY_BENCH_CHILD_ARGS?.split(' ').filter(Boolean) ?? [])],
      env: { ...process.env, BENCH_HOME: home, BENCH_IMPORT_ROOT: path.dirname(model) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`the service exited early (${code})`)));
    });
    return { child, port };
  }
  // What `npm start` runs (tsx src/main.ts), or with --compiled what the images run (`xray serve` on
  // the compiled build), on free ports; its logs (default level) go nowhere.
  const [data, training, registry, deployment, monitoring, gateway] = await freePorts(6);
  const extraArgs = process.env.XRAY_BENCH_CHILD_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = fork(opts.compiled ? path.join(ROOT, 'bin/xray.js') : path.join(ROOT, 'src/main.ts'), opts.compiled ? ['serve'] : [], {
    execArgv: opts.compiled ? extraArgs : ['--import', 'tsx', ...extraArgs],
    cwd: ROOT,
    env: {
      ...process.env,
      XRAY_HOME: home,
      ...(opts.compiled ? { XRAY_COMPILED: '1', MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' } : {}),
      XRAY_LOG_LEVEL: process.env.XRAY_BENCH_LOG_LEVEL ?? 'info',
      XRAY_MAX_UPLOAD_MB: '64',
      XRAY_PORT_DATA: String(data),
      XRAY_PORT_TRAINING: String(training),
      XRAY_PORT_REGISTRY: String(registry),
      XRAY_PORT_DEPLOYMENT: String(deployment),
      XRAY_PORT_MONITORING: String(monitoring),
      XRAY_PORT_GATEWAY: String(gateway),
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the platform exited early (${code})`))));
  exited.catch(() => {});
  const agent = new http.Agent({ keepAlive: false });
  const deadline = performance.now() + 180_000;
  for (;;) {
    const ready = await Promise.race([
      request(agent, deployment!, 'GET', '/models').then(
        (r) => r.status === 200 && (JSON.parse(r.body) as { models: { state: string }[] }).models.some((m) => m.state === 'ready'),
        () => false,
      ),
      exited,
    ]);
    if (ready) break;
    if (performance.now() > deadline) throw new Error('the platform did not serve a model within 180 s');
    await new Promise((r) => setTimeout(r, 500));
  }
  return { child, port: deployment! };
}

/** CPU time (user + system) a process has used, in ms; with `thread`, that thread's only (the main thread's id is the pid). */
function cpuMsOf(pid: number, thread?: number): number {
  try {
    const fields = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
const CLOCK_TICKS = 100;

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

interface Served {
  name: string;
  version: string;
}

async function modelStats(agent: http.Agent, port: number, target: Served): Promise<{ batches: number; items: number }> {
  const r = await request(agent, port, 'GET', '/models');
  const m = (JSON.parse(r.body).models as { name: string; version: string; stats: { batches: number; items: number } }[]).find((x) => x.name === target.name && x.version === target.version);
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
  pid: number,
  port: number,
  images: Buffer[],
  target: Served,
  concurrency: number,
  seconds: number,
  heatmap: string,
  counter: { n: number },
): Promise<Omit<ServeBenchRow, 'size' | 'batching' | 'concurrency'>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = `/predict?model=${encodeURIComponent(target.name)}&version=${encodeURIComponent(target.version)}&heatmap=${heatmap}`;
  const post = (i: number) => request(agent, port, 'POST', url, withComment(images[i % images.length]!, counter.n++), 'image/jpeg');
  // Warm-up: one round per client.
  await Promise.all(Array.from({ length: concurrency }, (_, i) => post(i)));
  const before = await modelStats(agent, port, target);
  const waitsBefore = await durableWaits(agent, port);
  const latencies: number[] = [];
  const stageSums: Record<string, number> = {};
  let errors = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const serviceCpu0 = cpuMsOf(pid);
  const mainCpu0 = cpuMsOf(pid, pid);
  const clientCpu0 = process.cpuUsage();
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
  const serviceCpu = cpuMsOf(pid) - serviceCpu0;
  const mainCpu = cpuMsOf(pid, pid) - mainCpu0;
  const clientCpu = process.cpuUsage(clientCpu0);
  const after = await modelStats(agent, port, target);
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
    serviceCpuMs: serviceCpu / Math.max(1, latencies.length),
    mainCpuMs: mainCpu / Math.max(1, latencies.length),
    clientCpuMs: (clientCpu.user + clientCpu.system) / 1000 / Math.max(1, latencies.length),
  };
}

async function synthImages(size: number, count: number): Promise<Buffer[]> {
  const { generateChestXray } = await import('../src/core/imaging/index.js');
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(await generateChestXray({ seed: 500 + i, size, pneumonia: i % 2 === 1, format: 'jpeg', quality: 90 }));
  return out;
}

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

export async function runServeBench(opts: ServeBenchOptions, log: (line: string) => void = console.log): Promise<ServeBenchResult> {
  const model = path.resolve(opts.platform ? DEFAULT_MODEL : opts.model);
  if (!existsSync(model)) throw new Error(`model file ${model} does not exist`);
  const cores = availableParallelism();
  const mode = opts.platform ? 'platform' : 'service';
  if (opts.compiled) {
    const build = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  }
  log(`model: ${model} (${(readFileSync(model).length / MB).toFixed(1)} MB), ${cores} cores, mode: ${mode === 'platform' ? (opts.compiled ? 'the whole platform, compiled (xray serve on dist/)' : 'the whole npm start platform (src/main.ts)') : 'the deployment app alone'}`);
  const ort = await bareOrt(model);
  const best = Math.max(...Object.values(ort.rates));
  const images = new Map<number, Buffer[]>();
  const decodeMs: Record<number, number> = {};
  const decodeCpuMs: Record<number, number> = {};
  for (const size of opts.sizes) {
    const t = performance.now();
    images.set(size, await synthImages(size, size > 1000 ? 2 : 16));
    const decode = await bareDecode(images.get(size)!, ort.size);
    decodeMs[size] = decode.ms;
    decodeCpuMs[size] = decode.cpuMs;
    log(`generated ${images.get(size)!.length} synthetic ${size}² JPEGs (${images.get(size)![0]!.length} bytes each, ${((performance.now() - t) / 1000).toFixed(1)} s); bare decode + preprocess ${decode.ms.toFixed(2)} ms, ${decode.cpuMs.toFixed(2)} CPU ms`);
  }
  const bestBatch = CEILING_BATCHES.find((n) => ort.rates[n] === best)!;
  const ceiling: Ceiling = { size: ort.size, rates: ort.rates, cpuMsPerImage: ort.cpu[bestBatch]!, batch1Ms: 1000 / ort.rates[1]!, best, decodeMs, decodeCpuMs };
  log(`bare onnxruntime-node at ${ort.size}²: ${CEILING_BATCHES.map((n) => `batch ${n} ${ort.rates[n]!.toFixed(1)} img/s`).join(', ')} — ceiling ${best.toFixed(1)} img/s, batch-1 ${ceiling.batch1Ms.toFixed(2)} ms; ${ceiling.cpuMsPerImage.toFixed(2)} CPU ms per image`);

  const home = mkdtempSync(path.join(tmpdir(), 'xray-bench-serve-'));
  let child: ChildProcess | null = null;
  try {
    const started = await startChild(opts, model, home);
    child = started.child;
    const { port } = started;
    const agent = new http.Agent({ keepAlive: true });
    const load = async (version: string, maxBatch: number | undefined, makeDefault: boolean): Promise<Served> => {
      const batching = maxBatch === undefined ? {} : { batching: { max_batch_size: maxBatch } };
      const body = Buffer.from(JSON.stringify({ path: model, name: 'bench', version, default: makeDefault, ...batching }));
      const r = await request(agent, port, 'POST', '/models/load', body);
      if (r.status !== 200) throw new Error(`loading the model failed: ${r.status} ${r.body}`);
      return { name: 'bench', version };
    };
    const served = async (): Promise<Served & { batching: { max_batch_size: number; max_queue_delay_ms: number }; heatmap_method: string; execution_providers: string[] }> => {
      const r = await request(agent, port, 'GET', '/models');
      const models = JSON.parse(r.body).models as (Served & { state: string; batching: { max_batch_size: number; max_queue_delay_ms: number }; heatmap_method: string; execution_providers: string[] })[];
      return models.find((m) => m.state === 'ready')!;
    };
    const primary: Served = opts.platform ? await served() : await load('batched', opts.maxBatch, true);
    const info = await served();
    const idle = rssOf(child.pid!);
    log(
      `service RSS with one model loaded, idle: ${(idle.rss / MB).toFixed(0)} MB; serving ${info.name}@${info.version}; heatmap: ${info.heatmap_method} (${opts.heatmap === 'inline' ? 'PNG rendered per request' : 'map computed per request, PNG rendered on GET'}); EP ${info.execution_providers.join(',')}; batching on = max ${info.batching.max_batch_size}, ${info.batching.max_queue_delay_ms} ms`,
    );

    // Peak RSS while only the first copy is loaded (sampled; VmHWM would include a later second copy).
    let peakOne = idle.rss;
    const sampler = setInterval(() => (peakOne = Math.max(peakOne, rssOf(child!.pid!).rss)), 100);
    const rows: ServeBenchRow[] = [];
    const counter = { n: 0 };
    log('');
    log('size   batching clients    req/s  of ceil     p50     p95     p99  batch  errors | preprocess  queue  infer  heatmap (mean ms) | durable wait mean/p99≤ ms | CPU ms/req service (ORT share) event loop, client');
    for (const batching of opts.platform ? (['on'] as const) : (['on', 'off'] as const)) {
      let target = primary;
      if (batching === 'off') {
        clearInterval(sampler);
        target = await load('unbatched', 1, false);
      }
      for (const size of opts.sizes) {
        for (const c of opts.concurrency) {
          const r = await drive(child.pid!, port, images.get(size)!, target, c, opts.seconds, opts.heatmap, counter);
          const row: ServeBenchRow = { size, batching, concurrency: c, ...r };
          rows.push(row);
          const s = r.stages;
          log(
            `${String(size).padEnd(6)} ${batching.padEnd(8)} ${String(c).padStart(7)} ${r.reqPerSec.toFixed(1).padStart(8)} ${pct(r.reqPerSec / best).padStart(8)} ${r.p50.toFixed(1).padStart(7)} ${r.p95.toFixed(1).padStart(7)} ${r.p99.toFixed(1).padStart(7)} ${r.meanBatch.toFixed(2).padStart(6)} ${String(r.errors).padStart(7)} | ${(s.preprocess ?? 0).toFixed(2).padStart(10)} ${(s.queue ?? 0).toFixed(2).padStart(6)} ${(s.inference ?? 0).toFixed(2).padStart(6)} ${(s.heatmap ?? 0).toFixed(2).padStart(8)}            | ${r.durableWait.mean.toFixed(2).padStart(9)}/${(Number.isFinite(r.durableWait.p99) ? r.durableWait.p99.toFixed(1) : '>1000').padStart(6)}           | ${r.serviceCpuMs.toFixed(2).padStart(6)} (${pct(ceiling.cpuMsPerImage / r.serviceCpuMs)}) ${r.mainCpuMs.toFixed(2)}, ${r.clientCpuMs.toFixed(2)}`,
          );
        }
      }
    }
    clearInterval(sampler);
    const end = rssOf(child.pid!);
    log('');
    log(`service RSS: one model loaded: idle ${(idle.rss / MB).toFixed(0)} MB, peak under load ${(peakOne / MB).toFixed(0)} MB${opts.platform ? '' : `; with the second (unbatched) copy too: peak ${(end.peak / MB).toFixed(0)} MB`}`);
    const find = (size: number, c: number) => rows.find((r) => r.size === size && r.concurrency === c && r.batching === 'on');
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    log(`targets (issue 20; ${path.basename(model)}, ${cores} cores, ${mode}; ceiling = bare ORT best batch ${best.toFixed(1)} img/s, measured above):`);
    const one = find(224, 1);
    if (one) {
      const goal = ceiling.batch1Ms + (decodeMs[224] ?? 0) + 2;
      log(
        `  224² JPEG, 1 client: p50 ${one.p50.toFixed(2)} ms vs bare ORT batch-1 ${ceiling.batch1Ms.toFixed(2)} + decode ${(decodeMs[224] ?? 0).toFixed(2)} + 2 = ${goal.toFixed(2)} ms (p50 − bare ORT − decode = ${(one.p50 - goal + 2).toFixed(2)} ms; ${verdict(one.p50 <= goal)}); ${one.reqPerSec.toFixed(1)} req/s = ${pct(one.reqPerSec / ort.rates[1]!)} of bare batch 1`,
      );
    }
    for (const [size, goal] of [[224, 0.85], [2048, 0.7]] as const) {
      const row = find(size, 8);
      // With every core busy, no server does better than cores / (ORT CPU + decode CPU) per request.
      const bound = (cores * 1000) / (ceiling.cpuMsPerImage + (decodeCpuMs[size] ?? 0));
      if (row) {
        log(
          `  ${size}² JPEG, 8 clients: ${row.reqPerSec.toFixed(1)} req/s = ${pct(row.reqPerSec / best)} of the ceiling (target ≥ ${pct(goal)}; ${verdict(row.reqPerSec >= goal * best)}); CPU bound with nothing but ORT + decode: ${bound.toFixed(0)} req/s = ${pct(bound / best)} of the ceiling; service ${row.serviceCpuMs.toFixed(2)} CPU ms/req, ${row.mainCpuMs.toFixed(2)} of them on its event loop`,
        );
      }
    }
    log(`  RSS with one model: ${(peakOne / MB).toFixed(0)} MB peak under load (target ≤ 400 MB; ${verdict(peakOne / MB <= 400)})`);
    agent.destroy();
    return { model, mode, cores, ceiling, rows, rssIdleMb: idle.rss / MB, rssPeakMb: peakOne / MB };
  } finally {
    const c = child;
    if (c) {
      if (opts.platform) c.kill('SIGTERM');
      else c.send?.({ cmd: 'stop' });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          c.kill('SIGKILL');
          resolve();
        }, 15_000);
        c.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
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
    .option('--platform', 'run the whole npm start platform (shipped model) instead of the deployment app alone', false)
    .option('--compiled', 'build (npm run build) and run the compiled code as the container images do (xray serve deployment, or xray serve with --platform) instead of tsx', false)
    .option('--seconds <n>', 'seconds per run', '4')
    .option('--concurrency <list>', 'client counts', '1,8')
    .option('--sizes <list>', 'JPEG sides', '224,2048')
    .option('--heatmap <mode>', "'url' (map per request, PNG on GET) or 'inline' (PNG per request)", 'url')
    .option('--max-batch <n>', 'max_batch_size with batching on (default: the service default)')
    .parse();
  const o = program.opts<{ model: string; platform: boolean; compiled: boolean; seconds: string; concurrency: string; sizes: string; heatmap: string; maxBatch?: string }>();
  await runServeBench({
    model: o.model,
    platform: o.platform,
    compiled: o.compiled,
    seconds: Number(o.seconds),
    concurrency: parseList(o.concurrency),
    sizes: parseList(o.sizes),
    heatmap: o.heatmap === 'inline' ? 'inline' : 'url',
    ...(o.maxBatch ? { maxBatch: parseList(o.maxBatch)[0]! } : {}),
  });
}
