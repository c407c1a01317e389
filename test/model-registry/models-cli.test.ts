import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/core/config/index.js';
import { buildGatewayApp } from '../../src/gateway/app.js';
import { ApiError, ServiceClient } from '../../src/cli/client.js';
import { modelsCompare, modelsGc, modelsList, modelsPromote, modelsShow } from '../../src/cli/commands/models.js';
import { openHarness, TINY_MODEL, trainerMetadata, type Harness } from './harness.js';

/** `xray models …` end to end: CLI functions → gateway → model registry service, over real HTTP. */
describe('xray models (CLI through the gateway)', () => {
  let h: Harness;
  let gateway: FastifyInstance;
  let client: ServiceClient;
  before(async () => {
    h = await openHarness('sqlite');
    const registryUrl = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const config = loadConfig({ XRAY_HOME: h.platform.config.home, XRAY_LOG_LEVEL: 'silent', XRAY_SERVICE_URLS: `model-registry=${registryUrl}`, XRAY_WEB_DIR: `${h.platform.config.home}/no-web` });
    gateway = await buildGatewayApp(config, h.platform.logger);
    client = new ServiceClient('model-registry', await gateway.listen({ port: 0, host: '127.0.0.1' }), undefined);
    for (const auc of [0.95, 0.9]) {
      await h.service.register({ name: 'pneumonia', actor: { name: 'trainer', role: 'ml-engineer' }, source: { kind: 'upload', data: TINY_MODEL }, metadata: trainerMetadata(auc, { hyperparameters: { lr: auc } }) });
    }
  });
  after(async () => {
    await gateway?.close();
    await h?.close();
  });

  test('list, promote (gate pass and refusal), show, compare, gc', async () => {
    assert.match(await modelsList(client), /^NAME\s+LATEST\s+PRODUCTION.*\npneumonia\s+2\s+-\s+-/);
    assert.match(await modelsPromote(client, 'pneumonia', '1', { stage: 'Production' }), /pneumonia v1 is now Production\ngate: passed/);
    await assert.rejects(modelsPromote(client, 'pneumonia', '2', { stage: 'Production' }), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 422);
      assert.equal(err.code, 'GATE_FAILED');
      assert.match(err.message, /more than the allowed margin 0\.01/);
      return true;
    });
    const shown = await modelsShow(client, 'pneumonia');
    assert.match(shown, /^1\s+Production\s+production\s+0\.950\s+0\.920–0\.970\s+0\.420 \(youden\)\s+dv-1/m);
    assert.match(shown, /v2 None → Production {2}refused by local-admin/);
    const compared = await modelsCompare(client, 'pneumonia', ['1', '2']);
    assert.match(compared, /^auc\s+0\.950\s+0\.900$/m);
    assert.match(compared, /lr: v1=0\.95 {2}v2=0\.9/);
    assert.match(await modelsGc(client, true), /would remove 0 unreferenced artifact\(s\) of 3 scanned/);
    assert.equal(JSON.parse(await modelsList(client, true))[0].production.version, 1);
  });
});
