/**
 * Multi-host harness for the scaled platform (issue 16 item 5). Linux network namespaces are the
 * hosts: one bridge in the root namespace (the test process sits on it), one namespace per host
 * with its own address on a private /24. Each host runs one real thing:
 *
 *   pg       PostgreSQL (initdb + postgres from Debian's packages, as the postgres user)
 *   redis    redis-server (AOF on, so a restart keeps queued jobs)
 *   s3       s3rver (the S3-protocol server the other tests use)
 *   nginx    Debian's NGINX with deploy/nginx/ and generated upstreams: the public gateway on
 *            :8080 and, for service-to-service calls, one internal listener per service
 *            (:8001…:8005, what a Kubernetes Service or compose DNS name is in production)
 *   <svc>-N  one `xray serve <svc>` replica
 *
 * Everything a client or a service calls goes through NGINX. Every process is started in its own
 * process group and killed by group; `close()` removes processes, namespaces, the bridge and the
 * temporary folder, and is safe to call from a `finally` after any failure. Leftovers of a run
 * that was itself killed (its pid is in every name) are removed by the next run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PROJECT_ROOT } from '../helpers/process.js';
import { parse as parseYaml } from 'yaml';
import { ADMIN_KEY } from './client.js';

export type ServiceKind = 'data-pipeline' | 'training' | 'model-registry' | 'deployment' | 'monitoring';
export const SERVICE_PORTS: Record<ServiceKind, number> = { 'data-pipeline': 8001, training: 8002, 'model-registry': 8003, deployment: 8004, monitoring: 8005 };
const SERVICES = Object.keys(SERVICE_PORTS) as ServiceKind[];

/** Why the scaled suite cannot run here (not root, a tool missing), or null. */
export function scaledUnavailable(): string | null {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (ip netns)';
  const missing: string[] = [];
  const has = (cmd: string, args: string[] = ['--version']) => spawnSync(cmd, args, { stdio: 'ignore' }).error === undefined;
  if (!has('ip', ['-V'])) missing.push('ip (iproute2)');
  if (!has('nginx', ['-v'])) missing.push('nginx');
  if (!existsSync('/etc/nginx/modules-enabled') || !readdirSync('/etc/nginx/modules-enabled').some((f) => f.includes('http-js'))) missing.push('the NGINX njs module (libnginx-mod-http-js)');
  if (!has('redis-server')) missing.push('redis-server');
  if (!has('setpriv')) missing.push('setpriv (util-linux)');
  if (!pgBin('initdb')) missing.push('PostgreSQL (initdb, postgres)');
  return missing.length ? `missing ${missing.join(', ')}` : null;
}

/**
 * The suite's gate: false with a loud SKIP line when it cannot run; under CI an error instead
 * (setup.mjs --test installs everything it needs, so CI never skips it silently).
 */
export function scaledGate(name: string): boolean {
  if (process.env.XRAY_FAST === '1') {
    console.log(`\n!!!!!!!! SKIPPING ${name}: XRAY_FAST=1 (a slow multi-host suite) !!!!!!!!\n`);
    return false;
  }
  const why = scaledUnavailable();
  if (!why) return true;
  if (process.env.CI) throw new Error(`${name}: ${why} — CI runs the scaled suite as root with nginx, redis-server and PostgreSQL installed`);
  console.log(`\n!!!!!!!! SKIPPING ${name}: ${why} !!!!!!!!\n`);
  return false;
}

function pgBin(name: string): string | null {
  const onPath = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  for (const v of readdirSync(root).sort((a, b) => Number(b) - Number(a))) {
    const p = path.join(root, v, 'bin', name);
    if (existsSync(p)) return p;
  }
  return null;
}

function sh(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (!opts.allowFail && (r.error || r.status !== 0)) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
  return r.stdout ?? '';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The settings Kubernetes gives every service: the literals of the xray-config ConfigMap in
 * deploy/kubernetes/base, so the suite runs with what the manifests define (auth on, drain period,
 * trusted proxies, object store, start-up timeout). The harness then sets only what differs here:
 * addresses, XRAY_HOME per replica, engine URLs and generated secrets, and 2-core sizing (a shorter
 * drain, one decode thread, quieter logs).
 */
export function manifestSettings(): Record<string, string> {
  const file = path.join(PROJECT_ROOT, 'deploy/kubernetes/base/kustomization.yaml');
  const doc = parseYaml(readFileSync(file, 'utf8')) as { configMapGenerator?: { name: string; literals?: string[] }[] };
  const literals = doc.configMapGenerator?.find((g) => g.name === 'xray-config')?.literals ?? [];
  if (literals.length === 0) throw new Error(`${file}: no xray-config literals`);
  return Object.fromEntries(literals.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Removes namespaces and bridges of earlier runs whose process is gone (a killed test run). */
export function removeStaleHosts(): void {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const line of sh('ip', ['netns', 'list'], { allowFail: true }).split('\n')) {
    const m = /^(xrs-(\d+)-\S+)/.exec(line.trim());
    if (!m || alive(Number(m[2]))) continue;
    for (const pid of sh('ip', ['netns', 'pids', m[1]!], { allowFail: true }).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    sh('ip', ['netns', 'del', m[1]!], { allowFail: true });
  }
  for (const line of sh('ip', ['-o', 'link', 'show', 'type', 'bridge'], { allowFail: true }).split('\n')) {
    const m = /^\d+: (xrb([0-9a-z]+)):/.exec(line);
    if (m && !alive(parseInt(m[2]!, 36))) sh('ip', ['link', 'del', m[1]!], { allowFail: true });
  }
}

export interface Host {
  name: string;
  ns: string;
  address: string;
}

/** A process running in a host's namespace, in its own process group. */
export class HostProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #exitedYet = false;

  constructor(
    readonly host: Host,
    readonly label: string,
    readonly logFile: string,
    argv: string[],
    env: Record<string, string>,
    cwd = PROJECT_ROOT,
  ) {
    const fd = openSync(logFile, 'a');
    this.child = spawn('ip', ['netns', 'exec', host.ns, ...argv], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.#exitedYet = true;
        resolve({ code, signal });
      }),
    );
    this.child.once('error', () => {});
  }

  get running(): boolean {
    return !this.#exitedYet;
  }

  /** Signals the whole process group. */
  signal(sig: NodeJS.Signals): void {
    if (!this.running || !this.child.pid) return;
    try {
      process.kill(-this.child.pid, sig);
    } catch {
      // already gone
    }
  }

  /** Signals, waits up to `graceMs`, then SIGKILLs the group. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.signal(sig);
    const done = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
      this.signal('SIGKILL');
      await this.exited;
    }
  }

  log(tail = 4000): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-tail);
    } catch {
      return '';
    }
  }
}

export interface ClusterOptions {
  /** Replicas per service behind NGINX (default: 2 each, 1 training). */
  replicas?: Partial<Record<ServiceKind, number>>;
  /** Training services outside NGINX that only consume the queue (default 1). */
  trainingWorkers?: number;
  /** Extra XRAY_* settings for every service. */
  env?: Record<string, string>;
  /** Seconds a replica keeps serving after SIGTERM (XRAY_DRAIN_S, default 2). */
  drainSeconds?: number;
}

export interface Replica {
  name: string;
  service: ServiceKind;
  host: Host;
  /** Behind NGINX (false: a training worker). */
  routed: boolean;
  url: string;
  proc: HostProcess | null;
}

/** A whole platform in namespaces; see the file comment. */
export class ScaledCluster {
  readonly id: string;
  readonly dir: string;
  readonly subnet: string;
  readonly bridge: string;
  readonly hosts: Host[] = [];
  readonly replicas: Replica[] = [];
  readonly env: Record<string, string> = {};
  /** The gateway, as a client sees it. */
  gateway = '';
  importRoot = '';
  databaseUrl = '';
  redisUrl = '';
  #pg: HostProcess | null = null;
  #redis: HostProcess | null = null;
  #s3: HostProcess | null = null;
  #nginx: HostProcess | null = null;
  #nginxConf = '';
  #pgData = '';
  #redisDir = '';
  #closed = false;
  readonly #opts: ClusterOptions;

  constructor(opts: ClusterOptions = {}) {
    this.#opts = opts;
    this.id = process.pid.toString(36);
    // A /24 per run, from the pid: two runs on one machine do not collide.
    this.subnet = `10.${150 + (process.pid % 50)}.${Math.floor(process.pid / 50) % 250}`;
    this.bridge = `xrb${this.id}`;
    this.dir = mkdtempSync(path.join(tmpdir(), 'xray-scaled-'));
    chmodSync(this.dir, 0o755);
  }

  host(name: string): Host {
    const found = this.hosts.find((h) => h.name === name);
    if (!found) throw new Error(`no host ${name}`);
    return found;
  }

  /** Creates a namespace with a veth on the bridge and the next address. */
  addHost(name: string): Host {
    const n = this.hosts.length + 10;
    const ns = `xrs-${process.pid}-${name}`;
    const outer = `xv${this.id}${n}`;
    const inner = `xp${this.id}${n}`;
    const address = `${this.subnet}.${n}`;
    sh('ip', ['netns', 'add', ns]);
    const host = { name, ns, address };
    this.hosts.push(host);
    sh('ip', ['link', 'add', outer, 'type', 'veth', 'peer', 'name', inner]);
    sh('ip', ['link', 'set', inner, 'netns', ns]);
    sh('ip', ['link', 'set', outer, 'master', this.bridge, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', inner, 'name', 'eth0']);
    sh('ip', ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return host;
  }

  /** Network, engines, NGINX, then every replica; resolves when all are ready through NGINX. */
  async start(): Promise<void> {
    removeStaleHosts();
    process.once('SIGINT', this.#onSignal);
    process.once('SIGTERM', this.#onSignal);
    sh('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    sh('ip', ['addr', 'add', `${this.subnet}.1/24`, 'dev', this.bridge]);
    sh('ip', ['link', 'set', this.bridge, 'up']);
    const pg = this.addHost('pg');
    const redis = this.addHost('redis');
    const s3 = this.addHost('s3');
    const nginx = this.addHost('nginx');
    await Promise.all([this.#startPostgres(pg), this.#startRedis(redis), this.#startS3(s3)]);

    this.importRoot = path.join(this.dir, 'import');
    mkdirSync(this.importRoot, { recursive: true });
    const replicas = { 'data-pipeline': 2, training: 1, 'model-registry': 2, deployment: 2, monitoring: 2, ...this.#opts.replicas };
    for (const service of SERVICES) {
      for (let i = 1; i <= replicas[service]; i++) this.#addReplica(service, `${service}-${i}`, true);
    }
    for (let i = 1; i <= (this.#opts.trainingWorkers ?? 1); i++) this.#addReplica('training', `training-worker-${i}`, false);

    this.gateway = `http://${nginx.address}:8080`;
    const internal = SERVICES.map((s) => `${s}=http://${nginx.address}:${SERVICE_PORTS[s]}`).join(',');
    // What Kubernetes gives every service (auth on, drain, trusted proxies, …); below, only what
    // differs on these hosts: addresses, engines, secrets (secretKeyRef there), and 2-core sizing.
    Object.assign(this.env, manifestSettings(), {
      XRAY_ADMIN_KEY: ADMIN_KEY,
      XRAY_SESSION_SECRET: randomBytes(32).toString('hex'),
      XRAY_DATABASE_URL: this.databaseUrl,
      XRAY_S3_ENDPOINT: `http://${s3.address}:4568`,
      XRAY_S3_ACCESS_KEY_ID: 'S3RVER',
      XRAY_S3_SECRET_ACCESS_KEY: 'S3RVER',
      XRAY_CACHE_URL: this.redisUrl,
      XRAY_QUEUE_URL: this.redisUrl,
      XRAY_SERVICE_URLS: internal,
      XRAY_SERVICE_TOKEN_SECRET: randomBytes(32).toString('hex'),
      XRAY_IMPORT_ROOT: this.importRoot,
      XRAY_DRAIN_S: String(this.#opts.drainSeconds ?? 2),
      XRAY_DECODE_THREADS: '1',
      XRAY_LOG_LEVEL: process.env.XRAY_SCALED_LOG_LEVEL ?? 'warn',
      // The scenarios register their own (small) models; the shipped CNN would only slow 2 cores down.
      XRAY_SEED_MODEL: 'off',
      ...this.#opts.env,
    });
    await this.#startNginx(nginx);
    // Start replicas a few at a time: 2 cores compile and boot them.
    const all = [...this.replicas];
    for (let i = 0; i < all.length; i += 3) await Promise.all(all.slice(i, i + 3).map((r) => this.startReplica(r.name)));
    await this.waitGateway();
  }

  #addReplica(service: ServiceKind, name: string, routed: boolean): void {
    const host = this.addHost(name);
    this.replicas.push({ name, service, host, routed, url: `http://${host.address}:${SERVICE_PORTS[service]}`, proc: null });
  }

  replica(name: string): Replica {
    const r = this.replicas.find((x) => x.name === name);
    if (!r) throw new Error(`no replica ${name}`);
    return r;
  }

  of(service: ServiceKind, routedOnly = true): Replica[] {
    return this.replicas.filter((r) => r.service === service && (!routedOnly || r.routed));
  }

  /** Starts (or restarts) one replica with `xray serve <service>` and waits for its /ready. */
  async startReplica(name: string, extraEnv: Record<string, string> = {}): Promise<Replica> {
    const r = this.replica(name);
    if (r.proc?.running) throw new Error(`${name} is running`);
    const home = path.join(this.dir, 'homes', name);
    mkdirSync(home, { recursive: true });
    r.proc = new HostProcess(r.host, name, path.join(this.dir, `${name}.log`), [process.execPath, path.join(PROJECT_ROOT, 'bin/xray.js'), 'serve', r.service], {
      ...this.env,
      XRAY_HOME: home,
      ...extraEnv,
    });
    await this.waitReady(r, 180_000);
    return r;
  }

  async waitReady(r: Replica, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (!r.proc?.running) throw new Error(`${r.name} exited while starting:\n${r.proc?.log()}`);
      const ok = await fetch(`${r.url}/ready`, { signal: AbortSignal.timeout(2000) }).then((x) => x.ok, () => false);
      if (ok) return;
      if (Date.now() > until) throw new Error(`${r.name} not ready after ${timeoutMs} ms:\n${r.proc.log()}`);
      await sleep(250);
    }
  }

  /** Every service ready through NGINX (its /api/services). */
  async waitGateway(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const body = await fetch(`${this.gateway}/api/services`).then((x) => x.json() as Promise<{ services: { name: string; ready: boolean }[] }>, (e: unknown) => ({ services: [], e }));
      if (body.services.length === SERVICES.length && body.services.every((s) => s.ready)) return;
      last = JSON.stringify(body);
      if (Date.now() > until) throw new Error(`the gateway does not see every service ready: ${last}`);
      await sleep(250);
    }
  }

  async #startPostgres(host: Host): Promise<void> {
    // Debian links only some tools onto PATH: take the rest from initdb's real folder.
    const bin = path.dirname(realpathSync(pgBin('initdb')!));
    const initdb = path.join(bin, 'initdb');
    const postgres = path.join(bin, 'postgres');
    const psql = path.join(bin, 'psql');
    const uid = Number(sh('id', ['-u', 'postgres']).trim());
    const gid = Number(sh('id', ['-g', 'postgres']).trim());
    this.#pgData = path.join(this.dir, 'pg');
    mkdirSync(this.#pgData, { mode: 0o700 });
    chownSync(this.#pgData, uid, gid);
    const r = spawnSync('setpriv', ['--reuid', 'postgres', '--regid', 'postgres', '--clear-groups', initdb, '-D', this.#pgData, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8'], { encoding: 'utf8', cwd: '/' });
    if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr}`);
    writeFileSync(path.join(this.#pgData, 'pg_hba.conf'), `local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ${this.subnet}.0/24 trust\n`);
    const pgArgs = [
      'setpriv', '--reuid', 'postgres', '--regid', 'postgres', '--clear-groups', postgres, '-D', this.#pgData,
      '-c', 'listen_addresses=*', '-c', 'port=5432', '-c', `unix_socket_directories=${this.#pgData}`,
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=300', '-c', 'shared_buffers=64MB',
    ];
    const start = async () => {
      this.#pg = new HostProcess(host, 'postgres', path.join(this.dir, 'postgres.log'), pgArgs, {}, '/');
      await this.#waitTcp(host.address, 5432, this.#pg, 30_000);
      // Accepting TCP is not accepting queries: wait for a real one.
      for (let i = 0; i < 100; i++) {
        if (spawnSync(psql, ['-h', host.address, '-U', 'postgres', '-d', 'postgres', '-Atc', 'select 1'], { encoding: 'utf8' }).stdout.trim() === '1') return;
        await sleep(100);
      }
      throw new Error(`PostgreSQL does not answer:\n${this.#pg.log()}`);
    };
    this.#startPgProcess = start;
    await start();
    sh(psql, ['-h', host.address, '-U', 'postgres', '-d', 'postgres', '-qc', 'create database xray']);
    this.databaseUrl = `postgres://postgres@${host.address}:5432/xray`;
  }

  #startPgProcess: (() => Promise<void>) | null = null;

  /** Fast shutdown of PostgreSQL (connections are cut). */
  async stopPostgres(): Promise<void> {
    await this.#pg?.stop('SIGINT', 15_000);
  }

  async startPostgres(): Promise<void> {
    await this.#startPgProcess!();
  }

  async #startRedis(host: Host): Promise<void> {
    this.#redisDir = path.join(this.dir, 'redis');
    mkdirSync(this.#redisDir);
    this.redisUrl = `redis://${host.address}:6379/0`;
    await this.startRedis();
  }

  async startRedis(): Promise<void> {
    const host = this.host('redis');
    this.#redis = new HostProcess(
      host,
      'redis',
      path.join(this.dir, 'redis.log'),
      ['redis-server', '--bind', '0.0.0.0', '--port', '6379', '--protected-mode', 'no', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.#redisDir],
      {},
      '/',
    );
    await this.#waitTcp(host.address, 6379, this.#redis, 20_000);
  }

  /** Redis shuts down (SIGTERM: the append-only file is flushed, as a managed restart would). */
  async stopRedis(): Promise<void> {
    await this.#redis?.stop('SIGTERM', 10_000);
  }

  async #startS3(host: Host): Promise<void> {
    const dir = path.join(this.dir, 's3');
    mkdirSync(dir);
    const script = [
      "const { default: S3rver } = await import('s3rver');",
      `const s = new S3rver({ port: 4568, address: '0.0.0.0', silent: true, directory: ${JSON.stringify(dir)}, configureBuckets: [{ name: 'xray' }] });`,
      'await s.run();',
      "process.on('SIGTERM', () => s.close().then(() => process.exit(0)));",
    ].join('\n');
    this.#s3 = new HostProcess(host, 's3rver', path.join(this.dir, 's3rver.log'), [process.execPath, '--input-type=module', '-e', script], {});
    await this.#waitTcp(host.address, 4568, this.#s3, 30_000);
  }

  async #startNginx(host: Host): Promise<void> {
    const dir = path.join(this.dir, 'nginx');
    cpSync(path.join(PROJECT_ROOT, 'deploy/nginx'), dir, { recursive: true });
    mkdirSync(path.join(dir, 'conf.d'), { recursive: true });
    const web = path.join(dir, 'web');
    mkdirSync(web, { recursive: true });
    writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>xray-mlops</title>');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.conf'))) {
      const text = readFileSync(path.join(dir, f), 'utf8')
        .replaceAll('/etc/nginx/xray/', `${dir}/`)
        .replaceAll('/usr/share/xray/web', web)
        .replace('access_log /dev/stdout xray;', `access_log ${dir}/access.log xray;`)
        .replace('error_log stderr warn;', `error_log ${dir}/error.log warn;`)
        .replaceAll('/tmp/nginx', `${dir}/tmp-nginx`)
        .replace('pid /tmp/nginx.pid;', `pid ${dir}/nginx.pid;`);
      writeFileSync(path.join(dir, f), text);
    }
    this.writeUpstreams(dir);
    // Service-to-service listeners: what a Kubernetes Service (or compose DNS name) is in production.
    // The service token is passed through here; the public gateway strips it.
    const internal = SERVICES.map(
      (s) => `server {
    listen ${SERVICE_PORTS[s]};
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_connect_timeout 3s;
        proxy_read_timeout 300s;
        proxy_request_buffering off;
        client_max_body_size 0;
        proxy_next_upstream error timeout http_502 http_503 http_504;
        proxy_next_upstream_tries 2;
        proxy_pass http://xray-${s};
    }
}`,
    );
    writeFileSync(path.join(dir, 'conf.d', 'internal.conf'), `${internal.join('\n')}\n`);
    chmodSync(dir, 0o755);
    this.#nginxConf = path.join(dir, 'nginx.conf');
    const check = spawnSync('nginx', ['-t', '-c', this.#nginxConf], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`);
    this.#nginx = new HostProcess(host, 'nginx', path.join(this.dir, 'nginx.log'), ['nginx', '-c', this.#nginxConf, '-g', 'daemon off;'], {}, '/');
    await this.#waitTcp(host.address, 8080, this.#nginx, 20_000);
  }

  /** Puts only these replicas of a service behind NGINX and reloads it (graceful: old workers finish). */
  async route(service: ServiceKind, names: string[], settleMs = 500): Promise<void> {
    this.#routed.set(service, names);
    this.writeUpstreams();
    const r = spawnSync('ip', ['netns', 'exec', this.host('nginx').ns, 'nginx', '-c', this.#nginxConf, '-s', 'reload'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`nginx reload failed: ${r.stderr}`);
    await sleep(settleMs);
  }

  /** CPU seconds (user + system) used so far by each process tree: engines, NGINX, every replica. */
  cpuSeconds(): Record<string, number> {
    const ticks = 100; // USER_HZ on Linux
    const tree = (pid: number): number => {
      let total = 0;
      const stack = [pid];
      while (stack.length) {
        const p = stack.pop()!;
        try {
          const fields = readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
          total += Number(fields[11]) + Number(fields[12]);
          for (const t of readdirSync(`/proc/${p}/task`)) {
            stack.push(...readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
          }
        } catch {
          // exited
        }
      }
      return total / ticks;
    };
    const out: Record<string, number> = {};
    for (const p of [this.#pg, this.#redis, this.#s3, this.#nginx, ...this.replicas.map((r) => r.proc)]) {
      if (p?.running && p.child.pid) out[p.label] = tree(p.child.pid);
    }
    return out;
  }

  readonly #routed = new Map<ServiceKind, string[]>();

  /** Writes upstreams.conf from the replicas (deploy/nginx's directives, the harness's servers). */
  writeUpstreams(dir = path.dirname(this.#nginxConf)): void {
    const keepalive: Record<ServiceKind, number> = { 'data-pipeline': 16, training: 8, 'model-registry': 16, deployment: 32, monitoring: 16 };
    const blocks = SERVICES.map((s) => {
      const routed = this.#routed.get(s);
      const servers = this.of(s).filter((r) => !routed || routed.includes(r.name)).map((r) => `    server ${r.host.address}:${SERVICE_PORTS[s]} max_fails=3 fail_timeout=10s;`);
      return `upstream xray-${s} {\n    zone xray-${s} 64k;\n${s === 'deployment' ? '    least_conn;\n' : ''}${servers.join('\n')}\n    keepalive ${keepalive[s]};\n}`;
    });
    // Sign-in for people (`xray serve gateway`) is not part of this cluster (auth is off here;
    // test/deploy/nginx-sign-in.test.ts runs it behind deploy/nginx): /auth/ answers 503.
    blocks.push(`upstream xray-signin {\n    server 127.0.0.1:9 max_fails=3 fail_timeout=10s;\n}`);
    writeFileSync(path.join(dir, 'upstreams.conf'), `# generated by test/scaled/harness.ts\n${blocks.join('\n')}\n`);
  }

  /**
   * Waits until NGINX sends requests to this replica again and it answers them (an access-log line
   * after `since` with its address and upstream status 200). NGINX's passive health checks keep a
   * replica that was down out of rotation for up to fail_timeout (10 s) after it is back, so a
   * rolling restart takes the next replica down only after this — as a rollout waits for readiness.
   */
  async waitRouted(r: Replica, since: number, timeoutMs = 30_000): Promise<void> {
    const needle = `"upstream":"${r.host.address}:${SERVICE_PORTS[r.service]}","upstream_status":"200"`;
    const until = Date.now() + timeoutMs;
    while (!this.nginxAccessLog().slice(since).includes(needle)) {
      if (Date.now() > until) throw new Error(`NGINX sent nothing to ${r.name} within ${timeoutMs} ms of its restart`);
      await sleep(100);
    }
  }

  nginxAccessLog(): string {
    try {
      return readFileSync(path.join(path.dirname(this.#nginxConf), 'access.log'), 'utf8');
    } catch {
      return '';
    }
  }

  nginxErrorLog(): string {
    try {
      return readFileSync(path.join(path.dirname(this.#nginxConf), 'error.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async #waitTcp(address: string, port: number, proc: HostProcess, timeoutMs: number): Promise<void> {
    const net = await import('node:net');
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (!proc.running) throw new Error(`${proc.label} exited:\n${proc.log()}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: address, port });
        s.setTimeout(1000, () => (s.destroy(), resolve(false)));
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > until) throw new Error(`${proc.label} not listening on ${address}:${port}:\n${proc.log()}`);
      await sleep(100);
    }
  }

  /** Log tails of every process (printed when a test fails). */
  logs(tail = 3000): string {
    const procs = [this.#pg, this.#redis, this.#s3, this.#nginx, ...this.replicas.map((r) => r.proc)].filter((p): p is HostProcess => !!p);
    return [...procs.map((p) => `----- ${p.label} -----\n${p.log(tail)}`), `----- nginx error.log -----\n${this.nginxErrorLog().slice(-tail)}`].join('\n');
  }

  /**
   * The same clean-up, synchronously, for a run interrupted by a signal (Ctrl-C, a CI timeout):
   * SIGKILL every process group, delete the namespaces and the bridge, remove the folder.
   */
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of [...this.replicas.map((r) => r.proc), this.#nginx, this.#s3, this.#redis, this.#pg]) p?.signal('SIGKILL');
    this.#removeHosts();
  }

  #removeHosts(): void {
    for (const h of this.hosts) {
      for (const pid of sh('ip', ['netns', 'pids', h.ns], { allowFail: true }).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      sh('ip', ['netns', 'del', h.ns], { allowFail: true });
    }
    sh('ip', ['link', 'del', this.bridge], { allowFail: true });
    if (!process.env.XRAY_SCALED_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Stops everything and removes namespaces, the bridge and the temporary folder. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    process.removeListener('SIGINT', this.#onSignal);
    process.removeListener('SIGTERM', this.#onSignal);
    const procs = this.replicas.map((r) => r.proc).filter((p): p is HostProcess => !!p);
    await Promise.allSettled(procs.map((p) => p.stop('SIGKILL', 5000)));
    await Promise.allSettled([this.#nginx, this.#s3, this.#redis].map((p) => p?.stop('SIGKILL', 5000)));
    await this.#pg?.stop('SIGINT', 5000).catch(() => {});
    this.#removeHosts();
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    this.closeSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
}
