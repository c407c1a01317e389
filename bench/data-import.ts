/**
 * Data pipeline benchmark (issue targets: folder import ≥ 150 images/s with flat memory;
 * 2048x2048 JPEG → 224 preprocessing ≤ 10 ms).
 *
 * 1. Imports /work/shared/data/kermany-train-224/chest_xray (or XRAY_BENCH_KERMANY) into a temporary
 *    XRAY_HOME through the service layer (the same `runImport` the import job runs: full decode,
 *    quality checks, perceptual hash, object store + SQLite), then re-imports it (must add nothing),
 *    creates a patient-level 85/15 version and validates it.
 * 2. Preprocesses a synthetic 2048x2048 JPEG to 224 letterbox 50 times (after a warm-up).
 *
 * Run: `npx tsx bench/data-import.ts` (also called by `npm run bench`).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { testConfig } from '../src/core/config/index.js';
import { openPlatform } from '../src/core/platform.js';
import { generateChestXray, preprocess } from '../src/core/imaging/index.js';
import { dataContext } from '../src/data-pipeline/service/context.js';
import { resolveImportDir } from '../src/data-pipeline/service/import-files.js';
import { runImport } from '../src/data-pipeline/service/import.js';
import { createVersion } from '../src/data-pipeline/service/versions.js';
import { validateDataset } from '../src/data-pipeline/service/validate.js';

const KERMANY = process.env.XRAY_BENCH_KERMANY || '/work/shared/data/kermany-train-224/chest_xray';
const MB = 1024 * 1024;

export interface DataImportBenchResult {
  skipped?: string;
  images?: number;
  imagesPerSecond?: number;
  importSeconds?: number;
  peakRssMb?: number;
  /** Process CPU time (user + system) per imported image: comparable across loaded and idle machines. */
  cpuMsPerImage?: number;
  startRssMb?: number;
  reimportSeconds?: number;
  reimportAdded?: number;
  versionSeconds?: number;
  validateSeconds?: number;
  nearDuplicates?: number;
  preprocess2048MeanMs: number;
}

async function benchImport(result: DataImportBenchResult): Promise<void> {
  if (!existsSync(KERMANY)) {
    result.skipped = `${KERMANY} is absent; import benchmark skipped`;
    return;
  }
  const home = mkdtempSync(path.join(tmpdir(), 'xray-bench-data-'));
  const platform = await openPlatform(testConfig(home, { XRAY_IMPORT_ROOT: path.dirname(KERMANY) }));
  try {
    const ctx = dataContext(platform);
    const dir = await resolveImportDir(platform.config.importRoot, KERMANY);
    const data = { dir, requested: KERMANY, splitFromFolders: false, actor: 'bench' };
    let peak = process.memoryUsage().rss;
    result.startRssMb = Math.round(peak / MB);
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    let t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let lastPrint = 0;
    const first = await runImport(ctx, data, (p) => {
      if (process.stderr.isTTY && p.done - lastPrint >= 500) {
        lastPrint = p.done;
        process.stderr.write(`  import ${p.done}/${p.total}\r`);
      }
    });
    const importSeconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    result.cpuMsPerImage = round((cpu.user + cpu.system) / 1000 / Math.max(1, first.done), 2);
    result.images = first.ingested;
    result.importSeconds = round(importSeconds, 2);
    result.imagesPerSecond = round(first.done / importSeconds, 1);
    result.peakRssMb = Math.round(peak / MB);
    if (first.rejected) console.log(`  rejected ${first.rejected}:`, first.rejections.slice(0, 5));

    t0 = performance.now();
    const second = await runImport(ctx, data);
    result.reimportSeconds = round((performance.now() - t0) / 1000, 2);
    result.reimportAdded = second.ingested;

    t0 = performance.now();
    const version = await createVersion(ctx, { name: 'bench', valFraction: 0.15, seed: 42 }, 'bench');
    result.versionSeconds = round((performance.now() - t0) / 1000, 2);
    console.log('  version', version.version.id.slice(0, 12), JSON.stringify(version.version.counts));

    t0 = performance.now();
    const report = await validateDataset(ctx, { dataset: version.version.id }, 'bench');
    result.validateSeconds = round((performance.now() - t0) / 1000, 2);
    result.nearDuplicates = report.summary.near_duplicates;
    console.log('  validation', JSON.stringify(report.summary));
  } finally {
    await platform.close();
    rmSync(home, { recursive: true, force: true });
  }
}

async function benchPreprocess(): Promise<number> {
  const jpeg = await generateChestXray({ seed: 2048, size: 2048, format: 'jpeg', quality: 90 });
  for (let i = 0; i < 5; i++) await preprocess(jpeg, { size: 224, mode: 'letterbox' });
  const runs = 50;
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await preprocess(jpeg, { size: 224, mode: 'letterbox' });
  return (performance.now() - t0) / runs;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export async function runDataImportBench(): Promise<DataImportBenchResult> {
  const result: DataImportBenchResult = { preprocess2048MeanMs: 0 };
  await benchImport(result);
  result.preprocess2048MeanMs = round(await benchPreprocess(), 2);
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await runDataImportBench();
  if (result.skipped) console.log(`data-import: ${result.skipped}`);
  else {
    console.log(
      `data-import: ${result.images} images in ${result.importSeconds} s = ${result.imagesPerSecond} images/s ` +
        `(${result.cpuMsPerImage} ms CPU per image; peak RSS ${result.peakRssMb} MB, start ${result.startRssMb} MB); re-import ${result.reimportSeconds} s, added ${result.reimportAdded}; ` +
        `version ${result.versionSeconds} s; validate ${result.validateSeconds} s (${result.nearDuplicates} near-duplicate pairs)`,
    );
  }
  console.log(`preprocess 2048x2048 JPEG → 224: ${result.preprocess2048MeanMs} ms mean over 50`);
}
