import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { testConfig } from '../../src/core/config/index.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';
import { PROJECT_ROOT } from '../helpers/process.js';

/**
 * What a user gets from `npm start` on a fresh clone: a new data dir, the platform starts, the
 * shipped model (models/pneumonia) is registered and promoted on the way up, and /predict answers
 * for a real chest X-ray with a probability, a label and a heatmap.
 */

const SHIPPED = path.join(PROJECT_ROOT, 'models', 'pneumonia', 'model.onnx');
const KERMANY = path.resolve(PROJECT_ROOT, '..', 'shared', 'data', 'kermany-train-224', 'chest_xray');

function kermanyImage(label: 'NORMAL' | 'PNEUMONIA'): string | null {
  const dir = path.join(KERMANY, label);
  if (!existsSync(dir)) return null;
  const file = readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort()[0];
  return file ? path.join(dir, file) : null;
}

describe('the shipped model answers /predict on a fresh start', () => {
  let home: string | null = null;
  let running: RunningPlatform | null = null;
  after(async () => {
    await running?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('fresh data dir → start → /predict on a Kermany image gives a probability, a label and a heatmap PNG', async (t) => {
    if (!existsSync(SHIPPED)) {
      t.skip(`no shipped model yet at models/pneumonia/model.onnx (the training session ships it; see docs/TRAINING.md)`);
      return;
    }
    const images = (['PNEUMONIA', 'NORMAL'] as const).map(kermanyImage);
    if (images.some((f) => f === null)) {
      t.skip(`the Kermany images are not here (${KERMANY})`);
      return;
    }
    home = mkdtempSync(path.join(tmpdir(), 'xray-shipped-'));
    running = await startPlatform({
      config: testConfig(home, { XRAY_SEED_MODEL: 'on', XRAY_WEB_DIR: path.join(home, 'no-web') }),
      randomPorts: true,
      gateway: true,
    });
    const base = `${running.urls.gateway}/api`;

    const models = await (await fetch(`${base}/model-registry/models/pneumonia`)).json();
    const v1 = models.versions.find((v: any) => v.version === 1);
    assert.equal(v1?.stage, 'Production', JSON.stringify(models));
    assert.deepEqual(v1.aliases, ['production']);
    // The card says where the shipped model was trained (recorded by the trainer in model.json), and carries its shift evidence and what was tried.
    const card = await (await fetch(`${base}/model-registry/models/pneumonia/versions/1/card`)).json();
    assert.deepEqual(card.training.trained_on, { device: 'cpu', device_name: 'cpu', processes: 1, threads: 2, torch: '1.13.0a0', amp: false, source: 'model.json' });
    assert.ok(card.shift_evidence.rows.some((r: { shipped: boolean }) => r.shipped), 'the shipped candidate is marked in the shift evidence');
    assert.ok(card.tried.length >= 3);

    for (const file of images as string[]) {
      let body: any = null;
      for (let i = 0; i < 200 && !body; i++) {
        const res = await fetch(`${base}/deployment/predict?heatmap=inline`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: readFileSync(file) });
        const json = await res.json();
        if (res.status === 200) body = json;
        else if (res.status === 503) await new Promise((r) => setTimeout(r, 100));
        else assert.fail(`/predict answered ${res.status}: ${JSON.stringify(json)}`);
      }
      assert.ok(body, 'the deployment service loaded the shipped model');
      assert.deepEqual(body.model, { name: 'pneumonia', version: '1' });
      assert.ok(body.probability >= 0 && body.probability <= 1, String(body.probability));
      assert.equal(body.label, body.probability >= body.threshold ? 'PNEUMONIA' : 'NORMAL');
      assert.equal(body.threshold, v1.threshold, 'served at the stored threshold');
      const png = await sharp(Buffer.from(body.heatmap_png_base64, 'base64')).metadata();
      assert.equal(png.format, 'png');
      const viaUrl: Response = await fetch(`${base.slice(0, -4)}${body.heatmap_url}`);
      assert.equal(viaUrl.status, 200);
      assert.equal(viaUrl.headers.get('content-type'), 'image/png');
    }

    const audit = await (await fetch(`${base}/monitoring/audit?actor=system&page_size=100`)).json();
    const actions = audit.items.map((a: any) => `${a.action} ${a.resource}`);
    assert.ok(actions.includes('model.register model:pneumonia/1') && actions.includes('model.stage model:pneumonia/1'), String(actions));
  });
});
