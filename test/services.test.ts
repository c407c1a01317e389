import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { FastifyPluginAsync } from 'fastify';
import { testConfig, SERVICE_NAMES } from '../src/core/config/index.js';
import type { ServicePluginOptions } from '../src/core/http/index.js';
import { openPlatform, type Platform } from '../src/core/platform.js';
import { tempHome } from './helpers/engines.js';

const PLUGINS: Record<(typeof SERVICE_NAMES)[number], () => Promise<{ default: FastifyPluginAsync<ServicePluginOptions> }>> = {
  'data-pipeline': () => import('../src/data-pipeline/plugin.js'),
  training: () => import('../src/training/plugin.js'),
  'model-registry': () => import('../src/model-registry/plugin.js'),
  deployment: () => import('../src/deployment/plugin.js'),
  monitoring: () => import('../src/monitoring/plugin.js'),
};

describe('service plugins', () => {
  const home = tempHome('xray-plugins-');
  let platform: Platform;
  before(async () => {
    platform = await openPlatform(testConfig(home.dir));
  });
  after(async () => {
    await platform?.close();
    home.cleanup();
  });

  for (const name of SERVICE_NAMES) {
    test(`${name}: a named plugin that refuses to boot without the auth plugin its routes rely on`, async () => {
      const app = Fastify();
      try {
        await assert.rejects(
          async () => {
            await app.register((await PLUGINS[name]()).default, { platform });
            await app.ready();
          },
          (err: Error & { code?: string }) => err.code === 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED' && err.message.includes("'auth'") && err.message.includes(`'${name}'`),
        );
      } finally {
        await app.close();
      }
    });
  }
});
