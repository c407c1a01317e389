/**
 * Backup / verify / restore on a realistic home (issue 19): the Kermany train split imported
 * through the data pipeline (../shared; a synthetic set of the same size when absent), 10 model
 * versions, 100,000 prediction records with their audit records. Prints the time and size of
 * each step; RPO/RTO in docs/OPERATIONS_RUNBOOK.md come from this output.
 *
 * The 100,000 prediction rows are generated (realistic sizes: stats, 64-d embedding) and written
 * through the deployment's prediction store and the audit log — running 100,000 real inferences
 * would only measure inference. `--predictions N`, `--images N` (synthetic) change the sizes.
 *
 * Run: `npm run bench -- backup` or `tsx bench/backup.ts [--predictions 100000]`.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { backupKey, createBackup, restoreBackup, verifyBackup } from '../src/core/backup/index.js';
import { testConfig } from '../src/core/config/index.js';
import { generateDataset } from '../src/core/imaging/index.js';
import { openObjectStore } from '../src/core/objects/index.js';
import { startPlatform } from '../src/main.js';
import { KyselyPredictionStore } from '../src/deployment/store/prediction-store.js';
import { ModelRegistryService } from '../src/model-registry/service/registry-service.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const KERMANY = path.resolve(ROOT, '../shared/data/kermany-train-224/chest_xray');
const MB = 1e6;

function duOf(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else n += statSync(p).size;
    }
  };
  walk(dir);
  return n;
}

const secs = (t: number) => ((performance.now() - t) / 1000).toFixed(1);

async function main(): Promise<void> {
  const o = new Command().option('--predictions <n>', 'prediction records', '100000').option('--images <n>', 'synthetic images when ../shared is absent', '5216').parse().opts<{ predictions: string; images: string }>();
  const home = mkdtempSync(path.join(tmpdir(), 'xray-bench-backup-'));
  const targetDir = mkdtempSync(path.join(tmpdir(), 'xray-bench-backup-target-'));
  const restoreHome = mkdtempSync(path.join(tmpdir(), 'xray-bench-restore-'));
  try {
    let source = KERMANY;
    if (!existsSync(KERMANY)) {
      console.log(`!! ${KERMANY} is absent: importing ${o.images} synthetic X-rays instead`);
      source = path.join(home, 'import', 'synthetic');
      await generateDataset(source, { perClass: Math.ceil(Number(o.images) / 2), seed: 'bench-backup', size: 224, format: 'jpeg' });
    }
    const config = testConfig(home, { XRAY_HOST: '127.0.0.1', XRAY_IMPORT_ROOT: path.dirname(source), XRAY_PROMOTION_CANARY: 'off' });
    const running = await startPlatform({ config, services: ['data-pipeline'], randomPorts: true });
    const base = running.urls['data-pipeline']!;
    let t = performance.now();
    const job = (await (await fetch(`${base}/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: source }) })).json()) as { job_id: string };
    let status: { state: string; ingested: number; rejected: number; total: number };
    do {
      await new Promise((r) => setTimeout(r, 1000));
      status = (await (await fetch(`${base}/import/${job.job_id}`)).json()) as typeof status;
    } while (status.state === 'waiting' || status.state === 'active');
    console.log(`imported ${status.ingested} images (${status.rejected} rejected) in ${secs(t)} s`);

    const { platform } = running;
    const registry = new ModelRegistryService(platform);
    const tiny = readFileSync(path.join(ROOT, 'test/fixtures/tiny-model.onnx'));
    for (let v = 1; v <= 10; v++) {
      await registry.register({ name: 'pneumonia', actor: { name: 'bench', role: 'admin' }, source: { kind: 'upload', data: tiny, filename: 'model.onnx' }, metadata: { input_size: 16, threshold: 0.5, metrics: { auc: 0.9 + v / 1000 } } });
    }
    t = performance.now();
    const store = new KyselyPredictionStore(platform.database);
    const n = Number(o.predictions);
    const embedding = Array.from({ length: 64 }, (_, i) => Math.sin(i));
    for (let i = 0; i < n; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, n - i) }, (_, k) => {
        const p = ((i + k) * 2654435761) % 1000 / 1000;
        const id = randomUUID();
        platform.audit.record({ actor: 'bench', action: 'prediction.create', resource: `prediction:${id}`, service: 'deployment', details: { model: 'pneumonia', version: '10', probability: p } });
        return {
          id,
          time: Date.now() - (n - i - k) * 1000,
          modelName: 'pneumonia',
          modelVersion: '10',
          variant: 'default',
          shadow: false,
          probability: p,
          label: p >= 0.5 ? ('PNEUMONIA' as const) : ('NORMAL' as const),
          threshold: 0.5,
          imageSha256: randomUUID().replace(/-/g, '').padEnd(64, '0'),
          heatmapMethod: 'cam' as const,
          stats: { mean: 110, std: 55, min: 0, max: 255, p01: 2, p99: 250, entropy: 7.2, clipLowFrac: 0.01, clipHighFrac: 0, laplacianVariance: 150, edgeDensity: 0.08, sourceFormat: 'jpeg', sourceWidth: 224, sourceHeight: 224 },
          embedding,
          latencyMs: 12,
          requestId: null,
          actor: 'bench',
          cached: false,
        };
      });
      await store.insertMany(batch as never);
    }
    await platform.audit.flush();
    console.log(`wrote ${n} prediction records and their audit records in ${secs(t)} s`);
    const dbBytes = statSync(path.join(home, 'xray.db')).size;
    console.log(`home: database ${(dbBytes / MB).toFixed(1)} MB, objects ${(duOf(path.join(home, 'objects')) / MB).toFixed(1)} MB`);

    const key = backupKey(config);
    const target = await openObjectStore(`file:${targetDir}`);
    t = performance.now();
    const m = await createBackup(platform, target, { key });
    const backupS = Number(secs(t));
    const size = duOf(targetDir);
    console.log(`backup create (online, full):      ${backupS.toFixed(1)} s, ${(size / MB).toFixed(1)} MB (${m.objects.length} objects, database ${(m.database.bytes / MB).toFixed(1)} MB)`);
    t = performance.now();
    const m2 = await createBackup(platform, target, { key });
    console.log(`backup create (incremental, again): ${secs(t)} s, ${m2.copied} objects copied`);
    await running.close();

    t = performance.now();
    const report = await verifyBackup(target, m.id, { key });
    console.log(`backup verify:                      ${secs(t)} s — ${report.ok ? 'ok' : 'FAILED'} (${report.checks.map((c) => `${c.name} ${c.ok ? 'ok' : 'FAIL'}`).join(', ')})`);
    const restoreConfig = testConfig(restoreHome);
    const objects = await openObjectStore(restoreConfig.objectStoreUrl);
    t = performance.now();
    await restoreBackup(target, m.id, { config: restoreConfig, objects }, { key });
    const restoreS = Number(secs(t));
    console.log(`backup restore (into an empty home): ${restoreS.toFixed(1)} s`);
    console.log(`RPO: the time between two backups (the last one is what is lost at worst); RTO here ≈ restore ${restoreS.toFixed(1)} s + platform start`);
    await objects.close();
    await target.close();
  } finally {
    for (const d of [home, targetDir, restoreHome]) rmSync(d, { recursive: true, force: true });
  }
}

await main();
