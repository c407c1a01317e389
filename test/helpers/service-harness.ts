import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { testConfig } from '../../src/core/config/index.js';
import { openPlatform, type Platform, type PlatformOverrides } from '../../src/core/platform.js';

export interface ServiceHarness {
  home: string;
  platform: Platform;
  app: FastifyInstance;
  close(): Promise<void>;
}

/**
 * One service's app on a fresh temporary embedded platform (SQLite, fs objects, memory cache).
 * `overrides` may depend on the temporary home (e.g. to make it the import root).
 */
export async function startService(
  build: (platform: Platform) => Promise<FastifyInstance>,
  prefix: string,
  overrides: Record<string, string> | ((home: string) => Record<string, string>) = {},
  platformOverrides: PlatformOverrides = {},
): Promise<ServiceHarness> {
  const home = mkdtempSync(path.join(tmpdir(), `xray-${prefix}-`));
  const platform = await openPlatform(testConfig(home, typeof overrides === 'function' ? overrides(home) : overrides), platformOverrides);
  const app = await build(platform);
  return {
    home,
    platform,
    app,
    async close() {
      await app.close();
      await platform.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
