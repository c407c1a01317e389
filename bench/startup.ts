// Startup and idle-memory benchmark for the embedded platform (issue targets: all five /ready
// in < 3 s once dependencies are installed; < 400 MB RSS in total when idle). Figures only.
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';

const root = path.resolve(import.meta.dirname, '..');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function rssOfTree(pid: number): number {
  let total = 0;
  const children = (p: number): number[] => {
    try {
      return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      /* exited */
    }
    stack.push(...children(p));
  }
  return total;
}

async function measure(label: string, cmd: string, args: string[]): Promise<void> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'xray-bench-'));
  const names = ['DATA', 'TRAINING', 'REGISTRY', 'DEPLOYMENT', 'MONITORING', 'GATEWAY'];
  const ports = await Promise.all(names.map(() => freePort()));
  const env: Record<string, string> = { ...process.env, XRAY_HOME: home, XRAY_LOG_LEVEL: 'warn' } as Record<string, string>;
  names.forEach((n, i) => (env[`XRAY_PORT_${n}`] = String(ports[i])));
  const t0 = performance.now();
  const child = spawn(cmd, args, { cwd: root, env, stdio: 'ignore', detached: true });
  const pending = new Set(ports.slice(0, 5));
  while (pending.size && performance.now() - t0 < 60000) {
    await Promise.all(
      [...pending].map(async (p) => {
        const ok = await fetch(`http://127.0.0.1:${p}/ready`).then((r) => r.ok, () => false);
        if (ok) pending.delete(p);
      }),
    );
    if (pending.size) await new Promise((r) => setTimeout(r, 20));
  }
  const readyMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5000));
  const rss = rssOfTree(child.pid!);
  // Signal the whole group: `npm start` runs tsx, which runs node.
  const exited = new Promise((r) => child.on('exit', r));
  process.kill(-child.pid!, 'SIGINT');
  await exited;
  rmSync(home, { recursive: true, force: true });
  console.log(
    `${label.padEnd(34)} all five /ready: ${pending.size ? 'TIMED OUT' : `${readyMs.toFixed(0)} ms`} (target < 3000 ms, ratio ${(readyMs / 3000).toFixed(2)})` +
      ` | idle RSS: ${(rss / 1048576).toFixed(0)} MB (target < 400 MB, ratio ${(rss / (400 * 1048576)).toFixed(2)})`,
  );
}

await measure('node --import tsx src/main.ts', process.execPath, ['--import', 'tsx', 'src/main.ts']);
await measure('npm start (with the setup check)', 'npm', ['start', '--silent']);
