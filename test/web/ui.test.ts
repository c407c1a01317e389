import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import path from 'node:path';
import { generateChestXray, generateDataset, makeDicom, renderChestXray } from '../../src/core/imaging/index.js';
import {
  accessibilityViolations,
  api,
  browserSkipReason,
  createDatasetVersion,
  ensureWebBuild,
  json,
  launchBrowser,
  registerTinyModel,
  screenshot,
  startTestPlatform,
  waitForServing,
  type TestPlatform,
} from './harness.js';

// End-to-end: the built UI served by the gateway, driven in Debian's Chromium.

const skip = browserSkipReason();
const MODEL = 'pneumonia';
const LAPTOP = { width: 1366, height: 900 };

/** A page that records uncaught errors and failed API calls other than the ones a test provokes. */
async function openPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: LAPTOP });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) errors.push(`console: ${msg.text()}`);
  });
  await page.goto(url);
  return { page, errors };
}

describe('web UI in a real browser', { skip: skip ?? false }, () => {
  let p: TestPlatform;
  let browser: Browser;
  let dataset: { id: string; name: string };
  let badMessage: string;

  before(async () => {
    ensureWebBuild();
    p = await startTestPlatform();
    browser = await launchBrowser();
    const g = p.gateway;
    // Two versions of the tiny model with different evaluations; v1 goes to Production (the
    // deployment service follows the production alias and serves it).
    const v1 = await registerTinyModel(g, MODEL, 0.93, { tp: 11, fp: 2, tn: 6, fn: 1 }, [
      { fpr: 0, tpr: 0, threshold: null },
      { fpr: 0.1, tpr: 0.7, threshold: 0.7 },
      { fpr: 0.25, tpr: 0.9, threshold: 0.5 },
      { fpr: 1, tpr: 1, threshold: 0.01 },
    ]);
    await registerTinyModel(g, MODEL, 0.88, { tp: 10, fp: 3, tn: 5, fn: 2 }, [
      { fpr: 0, tpr: 0, threshold: null },
      { fpr: 0.2, tpr: 0.6, threshold: 0.7 },
      { fpr: 0.4, tpr: 0.85, threshold: 0.5 },
      { fpr: 1, tpr: 1, threshold: 0.01 },
    ]);
    await api(g, `/api/model-registry/models/${MODEL}/stage`, json({ version: v1, stage: 'Production' }));
    await waitForServing(g, MODEL, String(v1));
    // Stored at 32 px: the training test trains at that size (a model must take its dataset's preprocessing size).
    dataset = await createDatasetVersion(g, 'synthetic-v1', 4, 32);
    // The message the API gives for a file that is not an image, to look for on the page.
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('this is not an X-ray')], { type: 'image/png' }), 'notes.png');
    const res = await fetch(`${g}/api/deployment/predict`, { method: 'POST', body: form });
    assert.equal(res.status >= 400 && res.status < 500, true, 'a text file is refused');
    badMessage = ((await res.json()) as { error: { message: string } }).error.message;
  });

  after(async () => {
    await browser?.close();
    await p?.close();
  });

  test('the Predict page is the home page and shows the served model', async () => {
    const { page, errors } = await openPage(browser, `${p.gateway}/`);
    await page.getByRole('heading', { name: 'Predict', level: 1 }).waitFor();
    await page.getByText(`${MODEL} v1`).first().waitFor();
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('uploading an X-ray renders the heatmap over it and the probability against the threshold', async () => {
    const { page, errors } = await openPage(browser, `${p.gateway}/`);
    const png = await generateChestXray({ seed: 'ui-1', size: 256, pneumonia: true });
    await page.getByTestId('file-input').setInputFiles({ name: 'patient-1.png', mimeType: 'image/png', buffer: png });
    const heatmap = page.getByTestId('heatmap');
    await heatmap.waitFor();
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('[data-testid=heatmap]');
      return !!img && img.complete && img.naturalWidth > 0;
    });
    const probability = await page.getByTestId('probability').textContent();
    assert.match(probability ?? '', /^\d{1,3}\.\d%$/);
    assert.match((await page.getByTestId('label').textContent()) ?? '', /^(PNEUMONIA|NORMAL)$/);
    assert.equal(await page.getByTestId('model').textContent(), `${MODEL} v1`);
    assert.match((await page.getByRole('meter').getAttribute('aria-valuetext')) ?? '', /threshold 50\.0%/);
    // The base layer is the preprocessed image from the data pipeline (the heatmap's pixel grid).
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('.heatmap-base');
      return !!img && img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0;
    });
    // The opacity slider and the toggle act on the overlay.
    await page.getByLabel('Opacity').fill('0.3');
    assert.equal(await heatmap.evaluate((el) => (el as HTMLElement).style.opacity), '0.3');
    await page.getByLabel('Heatmap', { exact: true }).uncheck();
    assert.equal(await heatmap.evaluate((el) => (el as HTMLElement).style.opacity), '0');
    await page.getByLabel('Heatmap', { exact: true }).check();
    await page.getByLabel('Opacity').fill('0.8');
    // The occlusion-sensitivity second opinion (monitoring /explain) replaces the overlay.
    const camSrc = await heatmap.getAttribute('src');
    await page.getByRole('button', { name: /Second opinion/ }).click();
    await page.getByRole('radio', { name: 'Occlusion' }).waitFor();
    assert.equal(await page.getByRole('radio', { name: 'Occlusion' }).isChecked(), true);
    assert.notEqual(await heatmap.getAttribute('src'), camSrc);
    assert.match((await heatmap.getAttribute('alt')) ?? '', /Occlusion sensitivity/);
    // Said in plain words: what the colours mean, what the threshold means, that it is decision support, and whether the maps agree.
    assert.match((await page.getByTestId('heatmap-caption').textContent()) ?? '', /strength follows the probability/);
    assert.match((await page.getByTestId('threshold-meaning').textContent()) ?? '', /At or above the threshold of 50\.0% the result reads PNEUMONIA/);
    await page.getByText('Decision support only: a clinician reviews every result.').waitFor();
    assert.match((await page.getByTestId('agreement').textContent()) ?? '', /rank correlation -?\d\.\d\d/);
    // Confirming the diagnosis posts ground truth to monitoring.
    await page.getByTestId('confirm').click();
    await page.getByTestId('feedback-result').waitFor();
    await screenshot(page, 'predict');
    assert.deepEqual(await accessibilityViolations(page), [], 'the result view (heatmap, slider, meter, actions)');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a DICOM upload is shown through the data pipeline preprocessing (browsers cannot draw DICOM)', async () => {
    const { page, errors } = await openPage(browser, `${p.gateway}/`);
    const img = renderChestXray({ seed: 'ui-dicom', size: 128 });
    const dcm = makeDicom({ width: img.width, height: img.height, pixels: img.pixels, bitsAllocated: 8, photometric: 'MONOCHROME2', modality: 'CR' });
    await page.getByTestId('file-input').setInputFiles({ name: 'study.dcm', mimeType: 'application/dicom', buffer: dcm });
    await page.getByTestId('heatmap').waitFor();
    await page.waitForFunction(() => {
      const base = document.querySelector<HTMLImageElement>('.heatmap-base');
      return !!base && base.src.startsWith('blob:') && base.complete && base.naturalWidth > 0;
    });
    assert.match((await page.getByTestId('probability').textContent()) ?? '', /%$/);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a file that is not an image shows an error card with the API message', async () => {
    const { page } = await openPage(browser, `${p.gateway}/`);
    await page.getByTestId('file-input').setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('this is not an X-ray') });
    const card = page.getByTestId('error-card');
    await card.waitFor();
    const text = (await card.textContent()) ?? '';
    assert.ok(text.includes(badMessage), `error card shows "${badMessage}"; it says: ${text}`);
    assert.ok(text.includes('notes.png'));
    await screenshot(page, 'predict-error');
    assert.deepEqual(await accessibilityViolations(page), [], 'predict-error');
    await page.close();
  });

  test('several files give a sortable batch table with thumbnails and per-file errors', async () => {
    const { page, errors } = await openPage(browser, `${p.gateway}/`);
    const dark = await generateChestXray({ seed: 'ui-2', size: 200, exposure: -1.5 });
    const bright = await generateChestXray({ seed: 'ui-3', size: 200, exposure: 1, pneumonia: true });
    await page.getByTestId('file-input').setInputFiles([
      { name: 'b-dark.png', mimeType: 'image/png', buffer: dark },
      { name: 'a-broken.png', mimeType: 'image/png', buffer: Buffer.from('nope') },
      { name: 'c-bright.png', mimeType: 'image/png', buffer: bright },
    ]);
    const table = page.getByTestId('batch-table');
    await table.waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=batch-table] tbody tr').length === 3 && !document.querySelector('[data-testid=batch-table] tbody')?.textContent?.includes('…'));
    const rows = table.locator('tbody tr');
    assert.equal(await rows.count(), 3);
    assert.equal(await table.locator('tbody img.thumb').count(), 2, 'a thumbnail per decodable file');
    assert.match((await rows.filter({ hasText: 'a-broken.png' }).textContent()) ?? '', /error/);
    // Sort by probability, descending: the brighter image scores higher with the tiny model.
    await table.getByRole('button', { name: /Probability/ }).click();
    await table.getByRole('button', { name: /Probability/ }).click();
    assert.equal(await table.locator('th[aria-sort=descending]').count(), 1);
    const first = (await rows.nth(0).textContent()) ?? '';
    assert.ok(first.includes('c-bright.png'), `highest probability first, got: ${first}`);
    await rows.nth(1).click();
    await page.getByTestId('heatmap').waitFor();
    await screenshot(page, 'predict-batch');
    assert.deepEqual(await accessibilityViolations(page), [], 'predict-batch');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('the Datasets page lists the version with its counts and sample thumbnails', async () => {
    const { page, errors } = await openPage(browser, `${p.gateway}/datasets`);
    const table = page.getByTestId('versions-table');
    await table.getByText(dataset.name).waitFor();
    const detail = page.getByTestId('version-detail');
    await detail.waitFor();
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>('img.sample')).filter((i) => i.complete && i.naturalWidth > 0).length >= 4);
    assert.match((await page.getByTestId('image-counts').textContent()) ?? '', /NORMAL 4/);
    await screenshot(page, 'datasets');
    assert.deepEqual(await accessibilityViolations(page), [], 'datasets');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('importing a server-side folder shows progress and counts; validation reports on the images', async () => {
    await generateDataset(path.join(p.home, 'incoming'), { perClass: 3, seed: 'ui-import', size: 64 });
    const { page, errors } = await openPage(browser, `${p.gateway}/datasets`);
    await page.getByLabel('Folder on the server').fill('incoming');
    await page.getByRole('button', { name: 'Import' }).click();
    const status = page.locator('.import-status');
    await status.getByText('Import completed').waitFor();
    assert.match((await status.textContent()) ?? '', /6 \/ 6 files( · \d+\.\d files\/s)?/);
    await page.getByTestId('image-counts').getByText(/NORMAL 7/).waitFor();
    // The import survives navigating away and back.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Models' }).click();
    await page.getByRole('heading', { name: 'Models', level: 1 }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Datasets' }).click();
    await status.getByText('Import completed').waitFor();
    assert.match((await status.textContent()) ?? '', /6 \/ 6 files/);
    await page.getByRole('button', { name: 'Validate' }).click();
    await page.getByTestId('validation').getByText(/\d+ images checked/).waitFor();
    // A second version with the imported images, then the diff between the two.
    await page.getByLabel('Name').fill('synthetic-v2');
    await page.getByRole('button', { name: 'Create version' }).click();
    await page.getByText('Created synthetic-v2 (14 images).').waitFor();
    await page.getByRole('button', { name: 'Diff' }).click();
    assert.match((await page.getByTestId('diff').textContent()) ?? '', /\+6 added/);
    await screenshot(page, 'datasets-import');
    assert.deepEqual(await accessibilityViolations(page), [], 'datasets-import');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('the Models page compares two versions side by side', async () => {
    const { page, errors } = await openPage(browser, `${p.gateway}/models`);
    const cmp = page.getByTestId('compare');
    await cmp.waitFor();
    const metrics = (await cmp.locator('table.metrics').textContent()) ?? '';
    assert.ok(metrics.includes('0.930') && metrics.includes('0.880'), `both AUCs shown: ${metrics}`);
    assert.equal(await cmp.locator('table.confusion').count(), 2);
    // Both ROC curves overlaid in one chart.
    assert.equal(await cmp.locator('figure.chart-square svg path').count(), 2);
    await page.getByTestId('lineage').waitFor();
    await page.getByRole('tab', { name: 'Model card' }).click();
    await page.getByTestId('model-card').waitFor();
    await screenshot(page, 'models');
    assert.deepEqual(await accessibilityViolations(page), [], 'models');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('promoting a weaker version shows the gate refusing it with its reason', async () => {
    const { page } = await openPage(browser, `${p.gateway}/models`);
    await page.getByTestId('model-versions').waitFor();
    await page.getByRole('button', { name: 'Promote version 2 to Production' }).click();
    const gate = page.getByTestId('gate');
    await gate.waitFor();
    assert.match((await gate.textContent()) ?? '', /refused/);
    await page.close();
  });

  test('the Training page starts a job and follows it to its curves and evaluation', async (t) => {
    const runtime = await api<{ available: boolean; error: string | null }>(p.gateway, '/api/training/train/runtime');
    if (!runtime.available) {
      if (process.env.CI) assert.fail(`the training worker is not available under CI: ${runtime.error}`);
      t.skip(`training worker unavailable: ${runtime.error}`);
      return;
    }
    const { page, errors } = await openPage(browser, `${p.gateway}/training`);
    await page.getByTestId('jobs-table').waitFor();
    await page.getByLabel('Dataset version').selectOption(dataset.id);
    await page.getByLabel('Epochs').fill('3');
    await page.getByLabel('Batch size').fill('4');
    await page.getByLabel('Input size (px)').fill('32');
    await page.getByRole('button', { name: 'Start job' }).click();
    const detail = page.getByTestId('job-detail');
    await detail.waitFor();
    // Followed live (long-polled events), no reload: the badge turns to succeeded by itself.
    await detail.locator('.job-head .badge', { hasText: 'succeeded' }).waitFor({ timeout: 180_000 });
    await detail.getByText('Validation evaluation').waitFor();
    const hp = (await detail.getByTestId('job-hyperparameters').textContent()) ?? '';
    assert.ok(/epochs 3/.test(hp) && /batch_size 4/.test(hp) && /input 32/.test(hp), `the job shows its settings: ${hp}`);
    const lossChart = detail.locator('figure', { hasText: 'Loss per epoch' });
    assert.equal(await lossChart.locator('svg path').count(), 2, 'train and validation loss curves');
    assert.equal(await detail.locator('figure', { hasText: 'Validation AUC per epoch' }).locator('svg circle').count(), 3, 'one AUC point per epoch');
    assert.equal(await detail.locator('table.confusion').count(), 1);
    await detail.locator('figure', { hasText: 'ROC curve' }).locator('svg path').first().waitFor();
    await screenshot(page, 'training');
    assert.deepEqual(await accessibilityViolations(page), [], 'training');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('every page passes axe-core\'s WCAG 2 A/AA rules (labels, names, contrast, landmarks) and is keyboard-reachable', async () => {
    const found: string[] = [];
    for (const route of ['/', '/datasets', '/training', '/models', '/monitoring']) {
      const { page, errors } = await openPage(browser, `${p.gateway}${route}`);
      await page.locator('main h1').first().waitFor();
      await page.waitForLoadState('networkidle');
      for (const v of await accessibilityViolations(page)) found.push(`${route}: ${v}`);
      // Keyboard: Tab from the top reaches the navigation and then the page's own controls.
      await page.keyboard.press('Tab');
      const first = await page.evaluate(() => document.activeElement?.tagName ?? '');
      assert.ok(['A', 'BUTTON', 'INPUT', 'SELECT'].includes(first), `${route}: the first Tab focuses a control, got ${first}`);
      assert.deepEqual(errors, []);
      await page.close();
    }
    assert.deepEqual(found, []);
  });

  test('on a phone (390 px) no page scrolls sideways and the current tab is in view', async () => {
    for (const [route, tab] of [['/', 'Predict'], ['/datasets', 'Datasets'], ['/training', 'Training'], ['/models', 'Models'], ['/monitoring', 'Monitoring']] as const) {
      const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
      await page.goto(`${p.gateway}${route}`);
      await page.locator('main').waitFor();
      await page.waitForTimeout(500);
      const { scrollWidth, inner } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, inner: window.innerWidth }));
      assert.ok(scrollWidth <= inner, `${route}: the page is ${scrollWidth} px wide in a ${inner} px window`);
      const box = await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: tab }).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= inner, `${route}: the ${tab} tab is in view (${JSON.stringify(box)})`);
      await screenshot(page, `${tab.toLowerCase()}-390`);
      await page.close();
    }
  });

  test('the Monitoring page shows traffic, alerts and the audit trail', async () => {
    const { page, errors } = await openPage(browser, `${p.gateway}/monitoring`);
    const audit = page.getByTestId('audit-table');
    await audit.getByText('prediction.create').first().waitFor();
    // Earlier tests predicted: GET /traffic counts them and the charts draw them, latency included.
    await page.getByText(/[1-9]\d* predictions in the last 24 hours/).waitFor();
    const latency = await page.locator('figure', { hasText: 'Latency per interval' }).locator('svg > title').textContent();
    assert.match(latency ?? '', /mean \([1-9]\d* points, last \d/);
    await page.getByTestId('alerts-table').waitFor();
    await screenshot(page, 'monitoring');
    assert.deepEqual(await accessibilityViolations(page), [], 'monitoring');
    assert.deepEqual(errors, []);
    await page.close();
  });
});

describe('web UI with auth on', { skip: skip ?? false }, () => {
  const ADMIN_KEY = 'xk_test_admin_key_for_the_browser_suite_0123456789';
  let p: TestPlatform;
  let browser: Browser;

  before(async () => {
    ensureWebBuild();
    p = await startTestPlatform({ XRAY_AUTH: 'on', XRAY_ADMIN_KEY: ADMIN_KEY });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await p?.close();
  });

  test('a 401 shows the API-key login; a valid key is kept for the session and sent as Bearer', async () => {
    const page = await browser.newPage({ viewport: LAPTOP });
    await page.goto(`${p.gateway}/models`);
    const login = page.getByTestId('login');
    await login.waitFor();
    await screenshot(page, 'login');
    assert.deepEqual(await accessibilityViolations(page), []);
    await page.getByLabel('API key').fill('wrong-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That key is unknown or revoked.').waitFor();
    await page.getByLabel('API key').fill(ADMIN_KEY);
    const bearer = page.waitForRequest((r) => r.url().includes('/api/model-registry/models') && r.headers().authorization === `Bearer ${ADMIN_KEY}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await login.waitFor({ state: 'detached' });
    await bearer;
    await page.getByText('No models registered yet').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('xray.apiKey')), ADMIN_KEY);
    await page.close();
  });
});
