import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { testConfig } from '../../src/core/config/index.js';
import { openPlatform, type Platform, type PlatformOverrides } from '../../src/core/platform.js';
import { DATA_PIPELINE_LOCAL_KEY } from '../../src/data-pipeline/client/types.js';
import { dataContext } from '../../src/data-pipeline/service/context.js';
import { LocalDataPipelineClient } from '../../src/data-pipeline/service/local-client.js';
import { PREDICTION_QUERIES_LOCAL_KEY } from '../../src/deployment/client/types.js';
import { StorePredictionQueries } from '../../src/deployment/service/prediction-queries.js';
import { MODEL_REGISTRY_LOCAL_KEY } from '../../src/model-registry/client/types.js';
import { LocalModelRegistryClient } from '../../src/model-registry/service/local-client.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';

/**
 * Single-service tests register models, ingest images and insert prediction records on the same
 * platform without running those services' apps: offer their in-process clients, as embedded mode would.
 */
export function provideLocalClients(platform: Platform): void {
  platform.local.provide(MODEL_REGISTRY_LOCAL_KEY, new LocalModelRegistryClient(new ModelRegistryService(platform)));
  platform.local.provide(DATA_PIPELINE_LOCAL_KEY, new LocalDataPipelineClient(dataContext(platform)));
  platform.local.provide(PREDICTION_QUERIES_LOCAL_KEY, new StorePredictionQueries(platform.database));
}

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
  provideLocalClients(platform);
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
