import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { accessibilityViolations, api, browserSkipReason, ensureWebBuild, json, launchBrowser, screenshot, startTestPlatform, type TestPlatform } from './harness.js';

// The MLflow-style runs view (issue 14 item 4) in Chromium: runs tracked through the registry's
// MLflow REST API, sorted and filtered in the table, compared (parameter diff, per-step curves).

const skip = browserSkipReason();
const MLFLOW = '/api/model-registry/api/2.0/mlflow';

interface RunSpec {
  name: string;
  params: Record<string, string>;
  /** val_auc per epoch (step = epoch). */
  auc: number[];
  /** train_loss_running per global step. */
  loss: number[];
  finished: boolean;
}

const RUNS: RunSpec[] = [
  { name: 'cnn-lr-1e-3', params: { model: 'compact_cnn', 'hp.lr': '0.001', 'hp.epochs': '3' }, auc: [0.81, 0.88, 0.9], loss: [0.7, 0.62, 0.55, 0.5, 0.46, 0.41], finished: true },
  { name: 'cnn-lr-3e-3', params: { model: 'compact_cnn', 'hp.lr': '0.003', 'hp.epochs': '3' }, auc: [0.85, 0.93, 0.95], loss: [0.69, 0.58, 0.49, 0.42, 0.37, 0.33], finished: true },
  { name: 'resnet-live', params: { model: 'compact_resnet', 'hp.lr': '0.001', 'hp.epochs': '3' }, auc: [0.7], loss: [0.72, 0.66], finished: false },
];

async function track(gateway: string, experimentId: string, spec: RunSpec, t0: number): Promise<string> {
  const { run } = await api<{ run: { info: { run_id: string } } }>(gateway, `${MLFLOW}/runs/create`, json({ experiment_id: experimentId, run_name: spec.name, start_time: t0 }));
  const id = run.info.run_id;
  const metrics = [
    ...spec.auc.map((value, i) => ({ key: 'val_auc', value, timestamp: t0 + i, step: i + 1 })),
    ...spec.auc.map((_, i) => ({ key: 'best_val_auc', value: Math.max(...spec.auc.slice(0, i + 1)), timestamp: t0 + i, step: i + 1 })),
    ...spec.loss.map((value, i) => ({ key: 'train_loss_running', value, timestamp: t0 + i, step: (i + 1) * 5 })),
  ];
  await api(gateway, `${MLFLOW}/runs/log-batch`, json({ run_id: id, metrics, params: Object.entries(spec.params).map(([key, value]) => ({ key, value })) }));
  if (spec.finished) await api(gateway, `${MLFLOW}/runs/update`, json({ run_id: id, status: 'FINISHED', end_time: t0 + 60_000 }));
  return id;
}

describe('web UI: runs view — sort, filter, compare', { skip: skip ?? false }, () => {
  let p: TestPlatform;
  let browser: Browser;

  before(async () => {
    ensureWebBuild();
    p = await startTestPlatform();
    browser = await launchBrowser();
    const { experiment_id } = await api<{ experiment_id: string }>(p.gateway, `${MLFLOW}/experiments/create`, json({ name: 'runs-view' }));
    let t0 = Date.UTC(2025, 0, 1);
    for (const spec of RUNS) await track(p.gateway, experiment_id, spec, (t0 += 3_600_000));
  });

  after(async () => {
    await browser?.close();
    await p?.close();
  });

  async function open(width = 1440): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    await page.goto(`${p.gateway}/runs`);
    await page.getByTestId('runs-table').getByText('resnet-live').waitFor();
    return page;
  }

  const names = (page: Page) => page.getByTestId('runs-table').locator('tbody tr td:nth-child(2)').allTextContents();

  test('lists every run with parameter and metric columns, newest first; the live run shows its best metric so far', async () => {
    const page = await open();
    assert.deepEqual(await names(page), ['resnet-live', 'cnn-lr-3e-3', 'cnn-lr-1e-3']);
    const headers = await page.getByTestId('runs-table').locator('thead th').allTextContents();
    for (const h of ['hp.lr', 'hp.epochs', 'model', 'val_auc', 'best_val_auc', 'train_loss_running']) assert.ok(headers.some((x) => x.startsWith(h)), `column ${h} in ${headers.join(' | ')}`);
    assert.ok(!headers.some((x) => x.startsWith('epochs')), 'one key style: hp.epochs only');
    const live = page.getByTestId('runs-table').locator('tbody tr', { hasText: 'resnet-live' });
    assert.match((await live.textContent()) ?? '', /running/);
    await page.getByText('Runs in progress').waitFor();
    assert.deepEqual(await accessibilityViolations(page), []);
    await screenshot(page, 'runs-1440');
    await page.close();
  });

  test('sorts by a metric column and by a parameter column, both directions', async () => {
    const page = await open();
    const header = (label: string) => page.getByTestId('runs-table').getByRole('button', { name: new RegExp(`^${label.replace('.', '\\.')}`) });
    await header('val_auc').click();
    assert.deepEqual(await names(page), ['resnet-live', 'cnn-lr-1e-3', 'cnn-lr-3e-3'], 'ascending val_auc');
    await header('val_auc').click();
    assert.deepEqual(await names(page), ['cnn-lr-3e-3', 'cnn-lr-1e-3', 'resnet-live'], 'descending val_auc');
    await header('hp.lr').click();
    assert.equal((await names(page))[2], 'cnn-lr-3e-3', 'largest learning rate last');
    await page.close();
  });

  test("filters with MLflow's search syntax; a bad filter is a readable error, not a blank page", async () => {
    const page = await open();
    const filter = page.getByLabel('Filter');
    await filter.fill("params.model = 'compact_cnn' and metrics.val_auc > 0.92");
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="runs-table"] tbody tr').length === 1);
    assert.deepEqual(await names(page), ['cnn-lr-3e-3']);
    await filter.fill('metrics.val_auc >>> 1');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText('Filter not applied').waitFor();
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByTestId('runs-table').getByText('cnn-lr-1e-3').waitFor();
    assert.equal((await names(page)).length, 3);
    await page.close();
  });

  test('compares selected runs: only differing parameters, one overlaid curve per run for each metric, per step', async () => {
    const page = await open();
    await page.getByLabel('Compare run cnn-lr-1e-3').check();
    await page.getByLabel('Compare run cnn-lr-3e-3').check();
    const compare = page.getByTestId('run-compare');
    await compare.waitFor();
    const diff = compare.getByTestId('param-diff');
    const rows = await diff.locator('tbody th').allTextContents();
    assert.deepEqual(rows, ['hp.lr'], 'only the learning rate differs');
    await compare.getByLabel('show all parameters').check();
    assert.deepEqual((await diff.locator('tbody th').allTextContents()).sort(), ['hp.epochs', 'hp.lr', 'model']);
    const loss = compare.locator('figure.chart', { hasText: 'train_loss_running' }).first();
    await loss.waitFor();
    // Two runs → two curves; per step: the loss is plotted at steps 5…30, not at 3 epochs.
    assert.equal(await loss.locator('svg path[fill="none"]').count(), 2, await loss.innerHTML());
    assert.match((await loss.textContent()) ?? '', /30/);
    assert.deepEqual(await accessibilityViolations(page), []);
    await screenshot(page, 'runs-compare-1440');
    await page.close();
  });

  test('on a phone (390 px) the page does not scroll sideways (the table scrolls inside its card)', async () => {
    const page = await open(390);
    await page.getByLabel('Compare run cnn-lr-1e-3').check();
    await page.getByLabel('Compare run resnet-live').check();
    await page.getByTestId('run-compare').waitFor();
    const { scrollWidth, inner } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, inner: window.innerWidth }));
    assert.ok(scrollWidth <= inner, `the page is ${scrollWidth} px wide in a ${inner} px window`);
    await screenshot(page, 'runs-390');
    await page.close();
  });
});
