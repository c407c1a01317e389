import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { testConfig } from '../../src/core/config/index.js';
import { AppError } from '../../src/core/errors.js';
import { generateDataset } from '../../src/core/imaging/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { createVersion, dataContext, ingestFile } from '../../src/data-pipeline/service/index.js';
import { buildTrainingApp } from '../../src/training/app.js';
import { findPython } from '../../src/training/runner/index.js';
import { newJobId } from '../../src/training/service/paths.js';
import { newJobRecord, type JobRecord } from '../../src/training/store/types.js';
import { provideLocalClients } from '../helpers/service-harness.js';

/**
 * Whether the real worker can run here (a Python with torch). When it cannot, the caller skips
 * with a loud message — and under CI (env CI set) the test fails instead, so a CI machine without
 * the worker's packages can never pass silently.
 */
export async function torchOrSkip(t: TestContext): Promise<boolean> {
  try {
    await findPython(process.env.XRAY_PYTHON ?? '');
    return true;
  } catch (err) {
    const message = err instanceof AppError ? err.message : String(err);
    if (process.env.CI) throw new Error(`CI: the training worker runtime is required: ${message}`);
    const loud = `\n*** SKIPPING TRAINING WORKER TESTS: ${message} ***\n`;
    process.stderr.write(loud);
    t.skip(loud.trim());
    return false;
  }
}

export interface TrainingHarness {
  home: string;
  platform: Platform;
  app: FastifyInstance;
  /** Closes the app and platform (keeps the home). */
  stop(): Promise<void>;
  /** Stops and removes the home. */
  close(): Promise<void>;
}

/** A training app on a platform in `home` (a fresh temp dir by default); XRAY_HOME is also the import root. */
export async function openTraining(overrides: Record<string, string> = {}, home = mkdtempSync(path.join(tmpdir(), 'xray-train-test-'))): Promise<TrainingHarness> {
  const platform = await openPlatform(testConfig(home, { XRAY_IMPORT_ROOT: home, ...overrides }));
  provideLocalClients(platform);
  const app = await buildTrainingApp(platform);
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      await app.close();
      await platform.close();
    })());
  return {
    home,
    platform,
    app,
    stop,
    async close() {
      await stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * A small dataset version made the way users make one: synthetic chest X-rays (Kermany layout)
 * ingested into the data pipeline and versioned with a 32-pixel preprocessing and patient splits.
 */
export async function makeDatasetVersion(platform: Platform, perClass = 20, size = 32): Promise<string> {
  const dir = path.join(platform.config.home, 'synthetic');
  const ds = await generateDataset(dir, { perClass, seed: 11, size: 96, format: 'png', imagesPerPatient: [1, 2] });
  const ctx = dataContext(platform);
  for (const f of ds.files) {
    const result = await ingestFile(ctx, {
      bytes: readFileSync(path.join(dir, f.path)),
      fileName: path.basename(f.path),
      label: f.label,
      patientId: f.patientId,
      actor: 'test',
    });
    if (result.status === 'rejected') throw new Error(`ingest rejected ${f.path}: ${result.error?.message}`);
  }
  const { version } = await createVersion(ctx, { name: 'tiny', preprocessing: { size }, valFraction: 0.3, testFraction: 0.1, seed: 3 }, 'test');
  return version.id;
}

/** Polls GET /train/:id until `done(job)` holds; fails after `timeoutMs` with the last state. */
export async function waitForJob(app: FastifyInstance, id: string, done: (job: any) => boolean, timeoutMs = 90_000, every = 100): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await app.inject({ method: 'GET', url: `/train/${id}` });
    const job = res.json();
    if (res.statusCode === 200 && done(job)) return job;
    if (Date.now() > until) throw new Error(`job ${id} not done after ${timeoutMs} ms: ${JSON.stringify({ state: job.state, progress: job.progress, error: job.error })}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export const FINAL = ['succeeded', 'failed', 'cancelled', 'interrupted'];

/** Every event of a job, via the long-poll endpoint. */
export async function allEvents(app: FastifyInstance, id: string, prefix = 'train'): Promise<any[]> {
  const out: any[] = [];
  let after = 0;
  for (;;) {
    const res = await app.inject({ method: 'GET', url: `/${prefix}/${id}/events?after=${after}` });
    const body = res.json();
    out.push(...body.events);
    if (body.events.length === 0) return out;
    after = body.next_after;
  }
}

/**
 * A dataset export folder written directly (manifest.json + images/<hash>.png, the format the
 * worker reads), for tests that exercise the runner without the data pipeline.
 */
export async function writeExport(dir: string, perSplit: { train: number; val: number }, size = 32): Promise<string> {
  const { createHash } = await import('node:crypto');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { generateChestXray } = await import('../../src/core/imaging/index.js');
  mkdirSync(path.join(dir, 'images'), { recursive: true });
  const items = [];
  for (const split of ['train', 'val'] as const) {
    for (let i = 0; i < perSplit[split]; i++) {
      const pneumonia = i % 2 === 1;
      const png = await generateChestXray({ seed: `${split}-${i}`, size, pneumonia, format: 'png' });
      const hash = createHash('sha256').update(png).digest('hex');
      writeFileSync(path.join(dir, 'images', `${hash}.png`), png);
      items.push({ hash, file: `images/${hash}.png`, label: pneumonia ? 'PNEUMONIA' : 'NORMAL', split, patient: `${split}-${i}` });
    }
  }
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({ version_id: 'test-export', classes: ['NORMAL', 'PNEUMONIA'], preprocessing: { size, mode: 'letterbox', hash: 'test-prep' }, items }),
  );
  return dir;
}

/** A complete job record with test defaults (queued, compact_cnn at 32 px); override any field. */
export function jobRecord(over: Partial<JobRecord>): JobRecord {
  const now = Date.now();
  const fresh = newJobRecord(
    {
      id: newJobId(),
      datasetVersion: null,
      datasetDir: '/nowhere',
      model: 'compact_cnn',
      inputSize: 32,
      experiment: 'pneumonia',
      request: { model: 'compact_cnn', hyperparameters: { epochs: 2 } },
      queueJobId: null,
      progress: null,
      createdBy: 'tester',
    },
    now,
  );
  return { ...fresh, attemptStartedAt: now, ...over };
}
