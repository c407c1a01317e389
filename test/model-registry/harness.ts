import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { testConfig } from '../../src/core/config/index.js';
import { dropPostgresSchema } from '../../src/core/db/postgres.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { buildModelRegistryApp } from '../../src/model-registry/app.js';
import { ModelRegistryService } from '../../src/model-registry/service/registry-service.js';
import { engineGate, POSTGRES_URL, postgresReachable, REDIS_URL, tempHome, uniqueName } from '../helpers/engines.js';

export const ENGINES = ['sqlite', 'postgres'] as const;
export type Engine = (typeof ENGINES)[number];

/** Which engines run here: SQLite always; PostgreSQL when reachable (loud SKIP, or failure under XRAY_REQUIRE_ENGINES=1). */
export async function availableEngines(): Promise<Record<Engine, boolean>> {
  return { sqlite: true, postgres: await engineGate('PostgreSQL (model registry)', await postgresReachable()) };
}

export interface Harness {
  engine: Engine;
  /** XRAY_HOME (the fs object store lives in its objects/ folder). */
  home: string;
  platform: Platform;
  app: FastifyInstance;
  service: ModelRegistryService;
  close(): Promise<void>;
}

/** A platform on a temp home (and a fresh PostgreSQL schema) with the model registry app built on it. */
export async function openHarness(engine: Engine, overrides: Record<string, string> = {}): Promise<Harness> {
  const home = tempHome('xray-registry-');
  const schema = uniqueName('reg');
  // The registry runs alone here: no deployment to canary-load a promotion (test/model-registry/servability.test.ts runs both).
  const base = { XRAY_PROMOTION_CANARY: 'off', ...overrides };
  const config = testConfig(home.dir, engine === 'postgres' ? { XRAY_DATABASE_URL: POSTGRES_URL, XRAY_QUEUE_URL: REDIS_URL, XRAY_REDIS_NAMESPACE: schema, ...base } : base);
  const platform = await openPlatform(config, engine === 'postgres' ? { schema } : {});
  const app = await buildModelRegistryApp(platform);
  return {
    engine,
    home: home.dir,
    platform,
    app,
    // The same class the training and deployment services use in-process (stateless over the platform).
    service: new ModelRegistryService(platform),
    async close() {
      await app.close();
      await platform.close();
      if (engine === 'postgres') await dropPostgresSchema(POSTGRES_URL, schema);
      home.cleanup();
    },
  };
}

export const TINY_MODEL = readFileSync(path.resolve(import.meta.dirname, '../fixtures/tiny-model.onnx'));

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** A trainer's model.json for the tiny fixture, with a given validation AUC. */
export function trainerMetadata(auc: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_name: 'tiny-test',
    input_size: 16,
    threshold: 0.42,
    threshold_method: 'youden',
    preprocessing: { size: 16, resize: 'letterbox', normalise: 'pixel/255' },
    preprocessing_hash: 'a'.repeat(64),
    dataset_version: 'dv-1',
    classes: ['NORMAL', 'PNEUMONIA'],
    positive_class: 'PNEUMONIA',
    class_counts: { train: { NORMAL: 30, PNEUMONIA: 70 }, val: { NORMAL: 8, PNEUMONIA: 12 } },
    hyperparameters: { lr: 0.001, batch_size: 8 },
    seed: 7,
    best_epoch: 3,
    metrics: {
      n: 20,
      positives: 12,
      auc,
      auc_ci: [round3(auc - 0.03), round3(Math.min(1, auc + 0.02))],
      accuracy: 0.85,
      sensitivity: 0.9,
      specificity: 0.75,
      ppv: 0.84,
      npv: 0.86,
      f1: 0.87,
      threshold: 0.42,
      threshold_method: 'youden',
      confusion: { tp: 11, fp: 2, tn: 6, fn: 1 },
      roc: [
        { fpr: 0, tpr: 0, threshold: null },
        { fpr: 0.25, tpr: 0.9, threshold: 0.42 },
        { fpr: 1, tpr: 1, threshold: 0.01 },
      ],
    },
    test_metrics: { test: { n: 30, positives: 18, auc: round3(auc - 0.01), auc_ci: [round3(auc - 0.05), round3(auc + 0.01)], sensitivity: 0.88, specificity: 0.7, confusion: { tp: 16, fp: 4, tn: 8, fn: 2 } } },
    ...overrides,
  };
}

/** Encodes a multipart/form-data body the way a browser or curl would. */
export async function multipart(parts: Record<string, string | { data: Buffer; filename: string; type?: string }>): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const form = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, new Blob([new Uint8Array(value.data)], { type: value.type ?? 'application/octet-stream' }), value.filename);
  }
  const req = new Request('http://localhost/', { method: 'POST', body: form });
  return { payload: Buffer.from(await req.arrayBuffer()), headers: { 'content-type': req.headers.get('content-type')! } };
}

/** Collects events of some topics; `wait` lets the next-tick delivery of the memory bus happen. */
export async function captureEvents(platform: Platform, topics: string[]): Promise<{ events: { topic: string; payload: any }[]; wait(): Promise<void> }> {
  const events: { topic: string; payload: any }[] = [];
  for (const topic of topics) await platform.events.subscribe(topic, (payload) => void events.push({ topic, payload }));
  return { events, wait: () => new Promise((resolve) => setTimeout(resolve, 20)) };
}
