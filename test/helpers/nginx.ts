import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from './process.js';

/** Why Debian's NGINX with the njs module (deploy/nginx needs it) cannot run here, or null. */
export function nginxMissing(): string | null {
  if (spawnSync('nginx', ['-v']).error) return 'nginx is not installed (Debian package nginx)';
  const njs = existsSync('/etc/nginx/modules-enabled') && readdirSync('/etc/nginx/modules-enabled').some((f) => f.includes('http-js'));
  return njs ? null : 'the NGINX njs module is not installed (Debian package libnginx-mod-http-js)';
}

export interface RunningNginx {
  base: string;
  dir: string;
  stop(): Promise<void>;
}

/**
 * Runs deploy/nginx unchanged except for what a test must move: the listen address, the upstream
 * servers (`name:port` of deploy/nginx/upstreams.conf → `host:port`), log, pid and temp paths, and
 * the web root (a one-page placeholder). Workers run as an unprivileged user when started by root,
 * so the folders are world-readable.
 */
export async function startNginx(opts: { port: number; servers: Record<string, string> }): Promise<RunningNginx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'xray-nginx-'));
  chmodSync(dir, 0o755);
  cpSync(path.join(PROJECT_ROOT, 'deploy/nginx'), dir, { recursive: true });
  mkdirSync(path.join(dir, 'conf.d'), { recursive: true });
  const web = path.join(dir, 'web');
  mkdirSync(web, { mode: 0o755 });
  writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>xray-mlops</title>', { mode: 0o644 });
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.conf'))) {
    let text = readFileSync(path.join(dir, f), 'utf8').replaceAll('/etc/nginx/xray/', `${dir}/`).replaceAll('/usr/share/xray/web', web);
    text = text.replace(/listen 8080 default_server;/, `listen 127.0.0.1:${opts.port} default_server;`).replace(/\n\s*listen \[::\]:8080[^\n]*/, '');
    for (const [from, to] of Object.entries(opts.servers)) text = text.replaceAll(`server ${from} `, `server ${to} `);
    text = text.replace('access_log /dev/stdout xray;', `access_log ${dir}/access.log xray;`).replace('error_log stderr warn;', `error_log ${dir}/error.log warn;`);
    text = text.replaceAll('/tmp/nginx', `${dir}/tmp-nginx`).replace('pid /tmp/nginx.pid;', `pid ${dir}/nginx.pid;`);
    writeFileSync(path.join(dir, f), text);
  }
  const conf = path.join(dir, 'nginx.conf');
  const check = spawnSync('nginx', ['-t', '-c', conf], { encoding: 'utf8' });
  if (check.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`nginx -t failed: ${check.stderr}`);
  }
  const nginx: ChildProcess = spawn('nginx', ['-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' });
  const base = `http://127.0.0.1:${opts.port}`;
  const stop = async () => {
    if (nginx.exitCode === null) {
      nginx.kill('SIGTERM');
      await new Promise((r) => nginx.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${base}/health`).then((r) => r.ok).catch(() => false)) return { base, dir, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error('NGINX did not answer /health');
}
