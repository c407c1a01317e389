import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { generateChestXray } from '../../src/core/imaging/index.js';
import { accessibilityViolations, api, browserSkipReason, createDatasetVersion, ensureWebBuild, json, launchBrowser, screenshot, startTestPlatform, TINY_MODEL, type TestPlatform } from './harness.js';

// The Models page's version card in Chromium: the lung-field heatmap report (issue 14 item 3)
// measured from the card, and the site-calibration flow (issue 21 item 1) from a labelled folder.

const skip = browserSkipReason();
const MODEL = 'pneumonia';

describe('web UI: model card heatmap location and site calibration', { skip: skip ?? false }, () => {
  let p: TestPlatform;
  let browser: Browser;
  let folder: string;

  before(async () => {
    ensureWebBuild();
    p = await startTestPlatform();
    browser = await launchBrowser();
    const dataset = await createDatasetVersion(p.gateway, 'chests', 12);
    const form = new FormData();
    form.append('name', MODEL);
    form.append('metadata', JSON.stringify({ input_size: 16, threshold: 0.5, metrics: { auc: 0.9 }, dataset_version: dataset.id }));
    form.append('file', new Blob([TINY_MODEL], { type: 'application/octet-stream' }), 'model.onnx');
    await api(p.gateway, '/api/model-registry/models/register', { method: 'POST', body: form });
    await api(p.gateway, `/api/model-registry/models/${MODEL}/stage`, json({ version: 1, stage: 'Production' }));
    // A site's labelled folder: {NORMAL,PNEUMONIA}/*.png, as a hospital exports it.
    folder = mkdtempSync(path.join(tmpdir(), 'xray-site-'));
    for (const label of ['NORMAL', 'PNEUMONIA'] as const) {
      mkdirSync(path.join(folder, label));
      for (let i = 0; i < 12; i++) writeFileSync(path.join(folder, label, `${i}.png`), await generateChestXray({ seed: `site-${label}-${i}`, size: 64, pneumonia: label === 'PNEUMONIA', exposure: label === 'PNEUMONIA' ? 0.3 : -0.3 }));
    }
  });

  after(async () => {
    await browser?.close();
    await p?.close();
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  async function openTab(tab: 'Model card' | 'Site calibration', width = 1440): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    await page.goto(`${p.gateway}/models`);
    await page.getByTestId('model-versions').waitFor();
    await page.getByRole('tab', { name: tab }).click();
    return page;
  }

  test('the model card measures where the heatmaps fall on the validation split and says which proxy it used', async () => {
    const page = await openTab('Model card');
    const section = page.getByTestId('heatmap-location');
    await section.getByText('Not measured yet').waitFor();
    await section.getByRole('button', { name: 'Measure on the validation split' }).click();
    await section.getByText(/of the heatmap mass falls inside the lung fields/).waitFor({ timeout: 60_000 });
    const text = (await section.textContent()) ?? '';
    assert.match(text, /On 6 validation images/);
    assert.match(text, /above \(neck, shoulders\)/);
    assert.match(text, /below \(diaphragm, abdomen\)/);
    assert.match(text, /not a segmentation/);
    assert.match((await page.getByTestId('trained-on').textContent()) ?? '', /Where it was trained: Not recorded\./);
    const card = await api<{ heatmap_location: { n: number; mean_inside: number } }>(p.gateway, `/api/model-registry/models/${MODEL}/versions/1/card`);
    assert.equal(card.heatmap_location.n, 6);
    assert.ok(text.includes(`${(card.heatmap_location.mean_inside * 100).toFixed(1)}%`), 'the UI shows the API figure');
    assert.deepEqual(await accessibilityViolations(page), []);
    await screenshot(page, 'models-card-1440');
    await page.close();
    const phone = await openTab('Model card', 390);
    await phone.getByTestId('heatmap-location').getByText(/falls inside the lung fields/).waitFor();
    const { scrollWidth, inner } = await phone.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, inner: window.innerWidth }));
    assert.ok(scrollWidth <= inner, `the page is ${scrollWidth} px wide in a ${inner} px window`);
    await screenshot(phone, 'models-card-390');
    await phone.close();
  });

  test('site calibration from a labelled folder: too few cases is refused, then a child version is registered and listed on the card', async () => {
    const page = await openTab('Site calibration');
    const view = page.getByTestId('calibrate');
    await view.getByLabel(/Labelled folder/).setInputFiles(folder);
    await view.getByText('12 PNEUMONIA and 12 NORMAL images picked').waitFor();
    assert.deepEqual(await accessibilityViolations(page), []);

    // The default minimum (30 per class) is more than this site has: refused, nothing registered.
    await view.getByRole('button', { name: 'Calibrate v1' }).click();
    await view.getByText('Calibration refused').waitFor({ timeout: 60_000 });
    assert.match((await view.textContent()) ?? '', /12/);
    assert.equal((await api<{ versions: unknown[] }>(p.gateway, `/api/model-registry/models/${MODEL}`)).versions.length, 1);

    await view.getByLabel('Minimum cases per class').fill('10');
    await view.getByLabel('Threshold').selectOption('youden');
    await view.getByRole('button', { name: 'Calibrate v1' }).click();
    const result = view.getByTestId('calibration-result');
    await result.waitFor({ timeout: 60_000 });
    const text = (await result.textContent()) ?? '';
    assert.match(text, /Registered v2 \(child of v1, same weights\)/);
    assert.match(text, /24: 12 PNEUMONIA, 12 NORMAL/);
    assert.match(text, /Youden's J/);
    assert.match(text, /sensitivity\d\.\d{3} \(\d\.\d{3}–\d\.\d{3}; \d+\/12\)/);
    assert.match(text, /not enough yet/, '12 cases per class give wide intervals');
    await screenshot(page, 'models-calibration-1440');

    const lineage = await api<{ parents: { name: string; version: number }[] }>(p.gateway, `/api/model-registry/models/${MODEL}/versions/2/lineage`);
    assert.deepEqual(lineage.parents.map((x) => x.version), [1]);
    // The versions table and the card follow the server: v2 is listed, and its card lists the calibration.
    await page.getByTestId('model-versions').getByText('v2', { exact: true }).waitFor();
    await page.getByRole('tab', { name: 'Model card' }).click();
    const row = page.getByTestId('site-calibrations').locator('tbody tr').first();
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /v2 \(this\) from v1.*24 \(12\/12\)/);
    assert.deepEqual(await accessibilityViolations(page), []);
    await page.close();
  });
});
