import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** When set (CI sets it), an unreachable scale engine fails the suite instead of skipping it. */
export const REQUIRE_ENGINES = process.env.XRAY_REQUIRE_ENGINES === '1';
export const POSTGRES_URL = process.env.XRAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.XRAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port || defaultPort) });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1500, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export const postgresReachable = (): Promise<boolean> => reachable(POSTGRES_URL, 5432);
export const redisReachable = (): Promise<boolean> => reachable(REDIS_URL, 6379);

/**
 * Decides whether a scale-engine suite runs. Unreachable → a loud SKIP line (or an error under
 * XRAY_REQUIRE_ENGINES=1, so CI can never silently skip the scale path).
 */
export async function engineGate(name: string, available: boolean): Promise<boolean> {
  if (available) return true;
  const msg = `${name} is not reachable`;
  if (REQUIRE_ENGINES) throw new Error(`${msg} but XRAY_REQUIRE_ENGINES=1 (CI must run every engine)`);
  console.log(`\n!!!!!!!! SKIPPING ${name} SUITE: ${msg} — start it to test the scale path !!!!!!!!\n`);
  return false;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export function tempHome(prefix = 'xray-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface S3Server {
  endpoint: string;
  close(): Promise<void>;
}

/** A real S3-protocol server (s3rver) on loopback, on a random port, in a temp folder. */
export async function startS3Server(): Promise<S3Server> {
  const { default: S3rver } = await import('s3rver');
  const home = tempHome('s3rver-');
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: home.dir, resetOnClose: true });
  const info = await server.run();
  return {
    endpoint: `http://127.0.0.1:${info.port}`,
    async close() {
      await server.close();
      home.cleanup();
    },
  };
}
