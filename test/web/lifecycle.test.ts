import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { accessibilityViolations, api, browserSkipReason, ensureWebBuild, json, launchBrowser, screenshot, startTestPlatform, TINY_MODEL, waitForServing, type TestPlatform } from './harness.js';

// The model lifecycle in Chromium: an unservable version is refused before it can serve, leaving
// Production empty needs a confirmation, and a failed load is visible (banner, alert).

const skip = browserSkipReason();
const MODEL = 'pneumonia';

async function register(gateway: string, metadata: Record<string, unknown>): Promise<number> {
  const form = new FormData();
  form.append('name', MODEL);
  form.append('metadata', JSON.stringify({ input_size: 16, threshold: 0.5, metrics: { auc: 0.92 }, ...metadata }));
  form.append('file', new Blob([TINY_MODEL], { type: 'application/octet-stream' }), 'model.onnx');
  return (await api<{ model_version: { version: number } }>(gateway, '/api/model-registry/models/register', { method: 'POST', body: form })).model_version.version;
}

describe('web UI: a model lifecycle you can trust', { skip: skip ?? false }, () => {
  let p: TestPlatform;
  let browser: Browser;
  let v1: number;
  let small: number;

  before(async () => {
    ensureWebBuild();
    p = await startTestPlatform();
    browser = await launchBrowser();
    v1 = await register(p.gateway, {});
    await api(p.gateway, `/api/model-registry/models/${MODEL}/stage`, json({ version: v1, stage: 'Production' }));
    await waitForServing(p.gateway, MODEL, String(v1));
    // The case: the network takes 16 px but its recorded preprocessing says 64 px.
    small = await register(p.gateway, { metrics: { auc: 0.95 }, preprocessing: { size: 64 } });
  });

  after(async () => {
    await browser?.close();
    await p?.close();
  });

  async function open(url: string, width = 1440): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    await page.goto(url);
    return page;
  }

  test('promoting a model whose input size differs from its preprocessing is refused before it can serve, with no override', async () => {
    const page = await open(`${p.gateway}/models`);
    await page.getByTestId('model-versions').waitFor();
    await page.getByRole('button', { name: `Promote version ${small} to Production` }).click();
    const gate = page.getByTestId('gate');
    await gate.waitFor();
    const text = (await gate.textContent()) ?? '';
    assert.match(text, /refused/);
    assert.match(text, /Servability: the deployment cannot serve it/);
    assert.match(text, /preprocessing size 64 differs from its input size 16/);
    assert.equal(await page.getByRole('button', { name: 'Force promotion' }).count(), 0, 'a failed canary has no override');
    await page.getByText('no override exists').waitFor();
    await screenshot(page, 'models-not-servable');
    const prod = await api<{ version: number }>(p.gateway, `/api/model-registry/models/${MODEL}/versions/production`).catch(() => null);
    assert.equal(prod?.version ?? (await api<any>(p.gateway, `/api/model-registry/models/${MODEL}`)).versions.find((v: any) => v.aliases.includes('production'))?.version, v1, 'production did not move');
    await page.close();
  });

  test('archiving the serving Production version asks first, says what happens, and then the banner, the alert and Predict tell the truth', async () => {
    const page = await open(`${p.gateway}/models`);
    await page.getByTestId('model-versions').waitFor();
    await page.getByRole('button', { name: `Archive version ${v1}` }).click();
    const confirm = page.getByTestId('confirm-leave-production');
    await confirm.waitFor();
    assert.match((await confirm.textContent()) ?? '', new RegExp(`Production will be empty.*keeps serving v${v1}`));
    assert.deepEqual(await accessibilityViolations(page), [], 'confirmation');
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await confirm.count(), 0);
    const detail = await api<any>(p.gateway, `/api/model-registry/models/${MODEL}`);
    assert.equal(detail.versions.find((v: any) => v.version === v1).stage, 'Production', 'cancel moved nothing');

    await page.getByRole('button', { name: `Archive version ${v1}` }).click();
    await confirm.getByLabel('Admin — reason').fill('replacing the model next week; stop promoting it');
    await confirm.getByRole('button', { name: 'Archive anyway' }).click();
    await page.getByText(`v${v1} moved to Archived.`).waitFor();
    // Live state: the table shows the server's new stage; the deployment keeps serving v1 and says so.
    await page.getByTestId('model-versions').getByText('Archived').waitFor();
    const banner = page.getByTestId('serving-banner');
    for (let i = 0; i < 50 && (await banner.count()) === 0; i++) {
      await page.reload();
      await page.getByTestId('model-versions').waitFor();
    }
    assert.match((await banner.textContent()) ?? '', new RegExp(`@production could not be loaded — predictions still come from v${v1}`));
    await screenshot(page, 'models-serving-banner');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'models-serving-banner-390');
    await page.close();

    const predict = await open(`${p.gateway}/`);
    await predict.getByTestId('serving-banner').waitFor();
    assert.match((await predict.getByTestId('serving-banner').textContent()) ?? '', /Model not serving as promoted/);
    assert.deepEqual(await accessibilityViolations(predict), [], 'predict with banner');
    await screenshot(predict, 'predict-serving-banner');
    await predict.close();

    const alerts = await api<{ items: { rule: string; severity: string; summary: string }[] }>(p.gateway, '/api/monitoring/alerts?status=active');
    const notServing = alerts.items.find((a) => a.rule === 'model_not_serving');
    assert.ok(notServing, `"model not serving" raised: ${JSON.stringify(alerts.items)}`);
    assert.equal(notServing.severity, 'critical');
    const monitoring = await open(`${p.gateway}/monitoring`);
    await monitoring.getByTestId('alerts-table').getByText('model_not_serving').first().waitFor();
    await monitoring.close();

    const audit = await api<{ items: { action: string; outcome: string }[] }>(p.gateway, '/api/monitoring/audit?action=model.load');
    assert.ok(audit.items.some((r) => r.outcome === 'failure'), 'the failed load is in the audit trail');
  });

  test('an INT8 variant shows what it is a form of and whether its parity gate let it serve', async () => {
    const gate = (passed: boolean) => ({
      method: 'onnxruntime-node', split: 'val', n: 20, auc_fp32: 0.95, auc_int8: passed ? 0.95 : 0.9, auc_drop: passed ? 0 : 0.05, probability_mae: 0.001, probability_max_abs_diff: 0.01,
      limits: { max_auc_drop: 0.002, max_probability_mae: 0.01 }, passed, message: passed ? 'AUC drop 0.0000, mean |dp| 0.0010: within the limits' : 'AUC 0.9000 is 0.0500 below the FP32 model\'s 0.9500 (at most 0.002)',
    });
    // This test platform runs without auth on loopback, which trusts its callers as services: the upload may carry the record.
    const passed = await register(p.gateway, { variant: { kind: 'int8', of: { name: MODEL, version: v1 }, gate: gate(true) } });
    const failed = await register(p.gateway, { variant: { kind: 'int8', of: { name: MODEL, version: v1 }, gate: gate(false) } });
    const page = await open(`${p.gateway}/models`);
    const table = page.getByTestId('model-versions');
    await table.waitFor();
    const badgeOf = (version: number) => table.getByRole('row').filter({ has: page.getByText(`v${version}`, { exact: true }) }).getByTestId('variant-badge');
    assert.equal((await badgeOf(passed).textContent())?.trim(), `INT8 of v${v1}`);
    assert.equal((await badgeOf(failed).textContent())?.trim(), 'INT8 · gate failed');
    assert.match((await badgeOf(failed).getAttribute('title')) ?? '', /0.0500 below/);
    assert.equal(await badgeOf(v1).count(), 0, 'an ordinary version has no variant badge');
    // Selected, the failed variant says why it cannot serve and offers no load button.
    await badgeOf(failed).click();
    assert.match((await page.getByTestId('variant-not-servable').textContent()) ?? '', new RegExp(`v${failed} cannot serve: .*failed its parity gate`));
    assert.equal(await page.getByRole('button', { name: `Load v${failed} for pinned predictions` }).count(), 0);
    await page.getByRole('button', { name: `Promote version ${failed} to Production` }).click();
    await page.getByText('no override exists').waitFor();
    assert.match((await page.locator('.outcome').textContent()) ?? '', /failed its parity gate/);
    assert.match((await page.locator('.outcome').textContent()) ?? '', new RegExp(`Promote the version it was made from \\(v${v1}\\) instead`));
    assert.deepEqual(await accessibilityViolations(page), [], 'versions with variant badges');
    await screenshot(page, 'models-int8-variant');
    await page.close();
  });
});
