import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { testConfig } from '../../src/core/config/index.js';
import { generateChestXray } from '../../src/core/imaging/index.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';

/** Shared pieces of the browser tests: the UI build, Chromium, a platform with data in it. */

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = path.join(ROOT, 'test-artifacts', 'screenshots');
export const TINY_MODEL = readFileSync(path.join(ROOT, 'test/fixtures/tiny-model.onnx'));
const WEB = path.join(ROOT, 'web');

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Why the suite cannot run here, or null when it can. A missing Chromium skips loudly, except
 * under CI, where it is an error (CI must never skip the browser tests silently).
 */
export function browserSkipReason(): string | null {
  if (process.env.XRAY_FAST === '1') return 'XRAY_FAST=1: the browser suite is slow';
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) throw new Error(`${CHROMIUM} is missing but CI is set: install it (apt-get install chromium; npm run setup -- --test does it)`);
    console.log(`\n!!!!!!!! SKIPPING the web UI browser suite: ${CHROMIUM} is missing (sudo apt-get install chromium) !!!!!!!!\n`);
    return `${CHROMIUM} is missing`;
  }
  return null;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds web/dist when it is missing or older than the UI sources (setup normally did it). */
export function ensureWebBuild(): void {
  const index = path.join(WEB, 'dist', 'index.html');
  const sources = Math.max(newestMtime(path.join(WEB, 'src')), statSync(path.join(WEB, 'index.html')).mtimeMs, statSync(path.join(WEB, 'vite.config.ts')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: WEB, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vite build failed:\n${r.stdout}\n${r.stderr}`);
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const AXE_SOURCE = readFileSync(AXE, 'utf8');

/** axe-core's WCAG 2.0/2.1 A and AA violations on the page as it is, one line each (empty: none). */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  // Evaluated over the DevTools protocol: the UI's CSP (no inline script) rightly blocks a script tag.
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    type Result = { violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[] };
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<Result> } }).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => `[${v.impact}] ${v.id} — ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')})`);
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

export interface TestPlatform {
  running: RunningPlatform;
  gateway: string;
  /** XRAY_HOME, also the import root (folders for /import go here). */
  home: string;
  close(): Promise<void>;
}

export async function startTestPlatform(overrides: Record<string, string> = {}): Promise<TestPlatform> {
  const home = mkdtempSync(path.join(tmpdir(), 'xray-web-'));
  const running = await startPlatform({ config: testConfig(home, { XRAY_IMPORT_ROOT: home, ...overrides }), randomPorts: true, gateway: true });
  return {
    running,
    gateway: running.urls.gateway!,
    home,
    async close() {
      await running.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** fetch against the gateway; throws with the body unless the status is 2xx. */
export async function api<T>(gateway: string, pathAndQuery: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(gateway + pathAndQuery, init);
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${pathAndQuery} → ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

export function json(body: unknown): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** A trainer's model.json for the tiny fixture, with a given validation AUC. */
function trainerMetadata(auc: number, confusion: { tp: number; fp: number; tn: number; fn: number }, roc: { fpr: number; tpr: number; threshold: number | null }[]) {
  return {
    model_name: 'tiny-test',
    input_size: 16,
    threshold: 0.5,
    threshold_method: 'youden',
    dataset_version: 'dv-fixture',
    classes: ['NORMAL', 'PNEUMONIA'],
    positive_class: 'PNEUMONIA',
    hyperparameters: { lr: auc > 0.9 ? 0.001 : 0.003, batch_size: 8 },
    seed: 7,
    best_epoch: 3,
    metrics: {
      n: 20,
      positives: 12,
      auc,
      auc_ci: [auc - 0.04, Math.min(1, auc + 0.03)],
      accuracy: 0.85,
      sensitivity: 0.9,
      specificity: 0.75,
      ppv: 0.84,
      npv: 0.86,
      f1: 0.87,
      threshold: 0.5,
      threshold_method: 'youden',
      confusion,
      roc,
    },
  };
}

/** Registers the tiny fixture model under `name` through the registry API; returns its version. */
export async function registerTinyModel(gateway: string, name: string, auc: number, confusion: { tp: number; fp: number; tn: number; fn: number }, roc: { fpr: number; tpr: number; threshold: number | null }[]): Promise<number> {
  const form = new FormData();
  form.append('name', name);
  form.append('metadata', JSON.stringify(trainerMetadata(auc, confusion, roc)));
  form.append('file', new Blob([TINY_MODEL], { type: 'application/octet-stream' }), 'model.onnx');
  const r = await api<{ model_version: { version: number } }>(gateway, '/api/model-registry/models/register', { method: 'POST', body: form });
  return r.model_version.version;
}

/** Waits until the deployment service serves `name` `version` as its default model. */
export async function waitForServing(gateway: string, name: string, version: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const r = await api<{ models: { name: string; version: string; default: boolean }[] }>(gateway, '/api/deployment/models');
    if (r.models.some((m) => m.name === name && m.version === version && m.default)) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`deployment did not load ${name} v${version} within ${timeoutMs} ms`);
}

/** Ingests synthetic X-rays (half NORMAL, half PNEUMONIA) and freezes them into a dataset version. */
export async function createDatasetVersion(gateway: string, name: string, perClass: number, preprocessingSize?: number): Promise<{ id: string; name: string }> {
  for (const label of ['NORMAL', 'PNEUMONIA'] as const) {
    const form = new FormData();
    form.append('label', label);
    for (let i = 0; i < perClass; i++) {
      const png = await generateChestXray({ seed: `${label}-${i}`, size: 96, pneumonia: label === 'PNEUMONIA' });
      form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), `${label.toLowerCase()}-patient${i}.png`);
    }
    await api(gateway, '/api/data-pipeline/ingest', { method: 'POST', body: form });
  }
  const r = await api<{ version: { id: string; name: string } }>(gateway, '/api/data-pipeline/version/create', json({ name, val_fraction: 0.25, ...(preprocessingSize ? { preprocessing: { size: preprocessingSize } } : {}) }));
  return r.version;
}
