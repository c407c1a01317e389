import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { backupRestore, backupVerify } from '../../../src/cli/commands/backup.js';
import BetterSqlite3 from 'better-sqlite3';
import { createBackup, readManifest, restoreBackup, signManifest } from '../../../src/core/backup/index.js';
import { dropPostgresSchema } from '../../../src/core/db/postgres.js';
import { openPlatform, type Platform } from '../../../src/core/platform.js';
import { testConfig } from '../../../src/core/config/index.js';
import { generateChestXray } from '../../../src/core/imaging/index.js';
import { openObjectStore } from '../../../src/core/objects/index.js';
import { startPlatform, type RunningPlatform } from '../../../src/main.js';
import { ModelRegistryService } from '../../../src/model-registry/service/registry-service.js';
import { findPython } from '../../../src/training/runner/index.js';
import { engineGate, POSTGRES_URL, postgresReachable, REDIS_URL, redisReachable, startS3Server, tempHome, uniqueName, type S3Server } from '../../helpers/engines.js';

// Disaster-recovery drill, on SQLite + filesystem objects and on PostgreSQL + S3: populate a running platform, back it up
// online, destroy its database and object store, restore, and every API answers as before.

const TINY = readFileSync(path.resolve(import.meta.dirname, '../../fixtures/tiny-model.onnx'));
const KEY = 'drill-backup-key-0123456789abcdef';
const SERVICES = ['data-pipeline', 'training', 'model-registry', 'deployment', 'monitoring'] as const;
/** Alert rules that fire on this drill's few predictions, so the backup holds alerts. */
const ALERTING = { XRAY_ALERT_LATENCY_P95_MS: '0.001', XRAY_ALERT_MIN_COUNT: '1', XRAY_METRICS_CACHE_MS: '0' };

/** Whether the drill trains a real model: the worker runtime is required under CI, and skipped loudly elsewhere or with XRAY_FAST. */
async function canTrain(): Promise<boolean> {
  if (process.env.XRAY_FAST === '1') return false;
  try {
    await findPython(process.env.XRAY_PYTHON ?? '');
    return true;
  } catch (err) {
    if (process.env.CI) throw new Error(`CI: the drill trains a model and needs the worker runtime: ${String(err)}`);
    process.stderr.write(`\n*** DRILL WITHOUT TRAINING: ${String(err)} ***\n`);
    return false;
  }
}


async function api(base: string, url: string, init?: RequestInit): Promise<any> {
  const res = await fetch(base + url, init);
  const text = await res.text();
  assert.ok(res.ok, `${init?.method ?? 'GET'} ${url} → ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}


interface DrillEngines {
  name: string;
  /** Config overrides for the platform (database, object store). */
  env: Record<string, string>;
  schema?: string;
  targetUrl: string;
  /** Destroys the database and the object store (the platform is stopped). */
  destroy(): Promise<void>;
  /** Restores into the destroyed stores. */
  restore(id: string, env: Record<string, string>): Promise<void>;
  cleanup(): Promise<void>;
}

function drill(setup: (home: string) => Promise<DrillEngines | null>) {
  const home = tempHome('xray-drill-');
  let engines: DrillEngines | null = null;
  let env: Record<string, string> = {};
  let running: RunningPlatform | null = null;
  let platform: Platform | null = null;
  let image: Buffer;
  const before: Record<string, any> = {};
  let probability = 0;
  let backupId = '';
  /** The newest prediction: of an ingested image, so verify can reproduce it from the backup. */
  let storedPrediction = { id: '', probability: 0 };

  const start = async () => {
    const config = testConfig(home.dir, { XRAY_HOST: '127.0.0.1', ...ALERTING, ...engines!.env });
    platform = await openPlatform(config, engines!.schema ? { schema: engines!.schema } : {});
    running = await startPlatform({ config, services: SERVICES, randomPorts: true, platform });
  };
  const stop = async () => {
    await running?.close();
    await platform?.close();
    running = null;
    platform = null;
  };
  after(async () => {
    await stop();
    await engines?.cleanup();
    home.cleanup();
  });

  test('populate, then back up while serving', async (t) => {
    engines = await setup(home.dir);
    if (!engines) return t.skip('engines unavailable');
    env = { XRAY_HOME: home.dir, XRAY_LOG_LEVEL: 'silent', XRAY_SEED_MODEL: 'off', XRAY_BACKUP_KEY: KEY, ...ALERTING, ...engines.env };
    await start();
    const { urls } = running!;
    let ingested: Buffer | null = null;
    for (const label of ['NORMAL', 'PNEUMONIA']) {
      const form = new FormData();
      form.append('label', label);
      for (let i = 0; i < 3; i++) {
        const png = await generateChestXray({ seed: `${label}-${i}`, size: 64, pneumonia: label === 'PNEUMONIA' });
        if (label === 'PNEUMONIA' && i === 0) ingested = png;
        form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), `${label}-${i}.png`);
      }
      await api(urls['data-pipeline']!, '/ingest', { method: 'POST', body: form });
    }
    const { version } = await api(urls['data-pipeline']!, '/version/create', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'drill', val_fraction: 0.34, preprocessing: { size: 32, mode: 'letterbox' } }),
    });
    if (await canTrain()) {
      // A real (tiny) training run: its job, run and registered version must come back from the backup too.
      const json = { 'content-type': 'application/json' };
      const submitted = await api(urls.training!, '/train', {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ dataset_version: version.id, model: 'compact_cnn', input_size: 32, seed: 3, experiment: 'drill', hyperparameters: { epochs: 1, batch_size: 4, max_train_batches: 1, warmup_epochs: 0, early_stopping_patience: null } }),
      });
      for (let i = 0; i < 1200; i++) {
        const job = await api(urls.training!, `/train/${submitted.job_id}`);
        if (['succeeded', 'failed', 'cancelled', 'interrupted'].includes(job.state)) {
          assert.equal(job.state, 'succeeded', job.error);
          break;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      await api(urls.training!, `/train/${submitted.job_id}/register`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'drill-trained' }) });
      before.job = await api(urls.training!, `/train/${submitted.job_id}`);
      before.trained = await api(urls['model-registry']!, '/models/drill-trained');
      before.trainedLineage = await api(urls['model-registry']!, '/models/drill-trained/versions/1/lineage');
    }
    const registry = new ModelRegistryService(platform!);
    const admin = { name: 'ada', role: 'admin' as const };
    const v = await registry.register({ name: 'pneumonia', actor: admin, source: { kind: 'upload', data: TINY, filename: 'model.onnx' }, metadata: { input_size: 16, threshold: 0.5, metrics: { auc: 0.9 } } });
    await registry.setStage({ name: 'pneumonia', version: v.version, stage: 'Production', actor: admin });
    for (let i = 0; i < 100 && !(await api(urls.deployment!, '/models')).models.length; i++) await new Promise((r) => setTimeout(r, 25));
    image = await generateChestXray({ seed: 'drill-predict', size: 96, pneumonia: true });
    for (let i = 0; i < 3; i++) {
      const p = await api(urls.deployment!, '/predict', { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(i === 0 ? image : await generateChestXray({ seed: `drill-${i}`, size: 96 })) });
      if (i === 0) probability = p.probability;
    }
    const stored = await api(urls.deployment!, '/predict', { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(ingested!) });
    storedPrediction = { id: stored.prediction_id, probability: stored.probability };
    await api(urls.monitoring!, '/feedback', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prediction_id: stored.prediction_id, label: 'PNEUMONIA' }) });
    const fired = await api(urls.monitoring!, '/alerts/evaluate', { method: 'POST' });
    assert.ok(fired.results.some((r: { firing: boolean }) => r.firing), JSON.stringify(fired));
    before.alerts = await api(urls.monitoring!, '/alerts');
    assert.ok(before.alerts.items.length >= 1, 'the backup holds an alert');
    before.performance = await api(urls.monitoring!, '/performance?model=pneumonia&version=1');
    before.model = await api(urls['model-registry']!, '/models/pneumonia');
    before.lineage = await api(urls['model-registry']!, '/models/pneumonia/versions/1/lineage');
    before.versions = await api(urls['data-pipeline']!, '/versions');
    before.images = await api(urls['data-pipeline']!, '/images?page_size=100');

    // Online: the platform keeps serving while the snapshot is taken.
    const target = await openObjectStore(engines.targetUrl, S3_CREDENTIALS(engines.env));
    const m = await createBackup(platform!, target, { key: Buffer.from(KEY) });
    backupId = m.id;
    assert.ok(m.objects.length >= 7, `images and the model are in the backup (${m.objects.length} objects)`);
    assert.ok(m.tables.audit_log! > 0 && m.tables.predictions === 4, JSON.stringify(m.tables));
    const again = await createBackup(platform!, target, { key: Buffer.from(KEY) });
    assert.equal(again.copied, 0, 'a second backup is incremental: no object copied twice');
    await target.close();
  });

  test('verify passes on the backup; destroy database and objects; restore; every API answers as before', async (t) => {
    if (!engines) return t.skip('engines unavailable');
    const lines: string[] = [];
    assert.equal(await backupVerify(backupId, { from: engines.targetUrl }, { env, out: (l) => lines.push(l) }), 0, lines.join('\n'));
    assert.ok(lines.some((l) => /audit chain intact/.test(l)) && lines.some((l) => /tables restored with the recorded row counts/.test(l)), lines.join('\n'));
    const reproduced = lines.find((l) => l.startsWith(`ok   prediction: prediction ${storedPrediction.id} reproduces p=`));
    assert.ok(reproduced, `verify reproduces the newest prediction of a stored image:\n${lines.join('\n')}`);
    assert.ok(Math.abs(Number(/p=([0-9.]+)/.exec(reproduced)![1]) - storedPrediction.probability) < 1e-6, reproduced);

    await stop();
    await engines.destroy();
    await engines.restore(backupId, env);

    await start();
    const { urls } = running!;
    assert.deepEqual(await api(urls['model-registry']!, '/models/pneumonia'), before.model);
    assert.deepEqual(await api(urls['model-registry']!, '/models/pneumonia/versions/1/lineage'), before.lineage);
    assert.deepEqual(await api(urls['data-pipeline']!, '/versions'), before.versions);
    assert.deepEqual(await api(urls['data-pipeline']!, '/images?page_size=100'), before.images);
    assert.deepEqual(await api(urls.monitoring!, '/alerts'), before.alerts);
    assert.deepEqual(await api(urls.monitoring!, '/performance?model=pneumonia&version=1'), before.performance);
    if (before.job) {
      assert.deepEqual(await api(urls.training!, `/train/${(before.job as { job_id: string }).job_id}`), before.job);
      assert.deepEqual(await api(urls['model-registry']!, '/models/drill-trained'), before.trained);
      assert.deepEqual(await api(urls['model-registry']!, '/models/drill-trained/versions/1/lineage'), before.trainedLineage);
    }
    const verify = await api(urls.monitoring!, '/audit/verify');
    assert.equal(verify.ok, true, JSON.stringify(verify));
    for (let i = 0; i < 100 && !(await api(urls.deployment!, '/models')).models.length; i++) await new Promise((r) => setTimeout(r, 25));
    const p = await api(urls.deployment!, '/predict', { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(image) });
    assert.equal(p.probability, probability, 'the restored model gives the same probability for the same image');
  });

  test('a damaged backup fails verification: one flipped byte in an object, a truncated dump, another key', async (t) => {
    if (!engines) return t.skip('engines unavailable');
    const target = await openObjectStore(engines.targetUrl, S3_CREDENTIALS(engines.env));
    try {
      const manifest = await readManifest(target, backupId);
      const objectKey = `objects/${manifest.objects[0]!.key}`;
      const original = await target.get(objectKey);
      const flipped = Buffer.from(original);
      flipped[flipped.length >> 1] ^= 0x01;
      await target.put(objectKey, flipped);
      const lines: string[] = [];
      assert.equal(await backupVerify(backupId, { from: engines.targetUrl }, { env, out: (l) => lines.push(l) }), 1);
      assert.ok(lines.some((l) => /^FAIL objects: 1 of \d+ objects are missing or altered/.test(l)), lines.join('\n'));
      await target.put(objectKey, original);

      const dump = await target.get(manifest.database.key);
      await target.put(manifest.database.key, dump.subarray(0, dump.length >> 1));
      lines.length = 0;
      assert.equal(await backupVerify(backupId, { from: engines.targetUrl }, { env, out: (l) => lines.push(l) }), 1);
      assert.ok(lines.some((l) => /^FAIL database: database dump sha256/.test(l)), lines.join('\n'));
      await target.put(manifest.database.key, dump);

      lines.length = 0;
      assert.equal(await backupVerify(backupId, { from: engines.targetUrl }, { env: { ...env, XRAY_BACKUP_KEY: 'some-other-site-key-0123456789' }, out: (l) => lines.push(l) }), 1);
      assert.ok(lines.some((l) => /^FAIL signature/.test(l)), lines.join('\n'));

      if (engines.name === 'sqlite') {
        // A backup that is whole and signed, but whose recorded prediction the restored model does
        // not give (1e-5 off): verify must reproduce it, not just count it.
        const manifestKey = `backups/${backupId}/manifest.json`;
        const signedManifest = await target.get(manifestKey);
        const scratch = tempHome('xray-drill-tamper-');
        try {
          const file = path.join(scratch.dir, 'database.sqlite');
          writeFileSync(file, dump);
          const db = new BetterSqlite3(file);
          assert.equal(db.prepare('update predictions set probability = probability + 1e-5 where id = ?').run(storedPrediction.id).changes, 1);
          db.close();
          const altered = readFileSync(file);
          await target.put(manifest.database.key, altered);
          const { signature: _old, ...rest } = manifest;
          void _old;
          const resigned = signManifest({ ...rest, database: { ...rest.database, sha256: createHash('sha256').update(altered).digest('hex'), bytes: altered.length } }, Buffer.from(KEY));
          await target.put(manifestKey, JSON.stringify(resigned));
          lines.length = 0;
          assert.equal(await backupVerify(backupId, { from: engines.targetUrl }, { env, out: (l) => lines.push(l) }), 1, lines.join('\n'));
          assert.ok(lines.some((l) => l.startsWith('ok   signature')) && lines.some((l) => l.startsWith('ok   database')), lines.join('\n'));
          assert.ok(lines.some((l) => l.startsWith(`FAIL prediction: prediction ${storedPrediction.id} `) && /recorded p=/.test(l)), lines.join('\n'));
        } finally {
          await target.put(manifest.database.key, dump);
          await target.put(manifestKey, signedManifest);
          scratch.cleanup();
        }
      }
    } finally {
      await target.close();
    }
  });
}

function S3_CREDENTIALS(env: Record<string, string>) {
  return env.XRAY_S3_ENDPOINT ? { endpoint: env.XRAY_S3_ENDPOINT, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true, region: 'us-east-1' } : {};
}

describe('disaster-recovery drill: SQLite + filesystem objects', () => {
  drill(async (home) => {
    const target = tempHome('xray-drill-target-');
    const targetUrl = `file:${target.dir}`;
    return {
      name: 'sqlite',
      env: {},
      targetUrl,
      async destroy() {
        for (const f of readdirSync(home)) if (f.startsWith('xray.db')) rmSync(path.join(home, f));
        rmSync(path.join(home, 'objects'), { recursive: true, force: true });
      },
      async restore(id, env) {
        assert.equal(await backupRestore(id, { from: targetUrl }, { env, out: () => {} }), 0);
        const refused = await backupRestore(id, { from: targetUrl }, { env, out: () => {} }).then(String, (e: Error) => e.message);
        assert.match(refused, /already holds \d+ objects; restore into an empty one, or pass --force/, 'a second restore refuses a non-empty home');
      },
      async cleanup() {
        target.cleanup();
      },
    };
  });
});

describe('disaster-recovery drill: PostgreSQL + S3 (s3rver)', () => {
  drill(async () => {
    if (!(await engineGate('PostgreSQL (backup drill)', await postgresReachable()))) return null;
    if (!(await engineGate('Redis (backup drill: the scaled queue)', await redisReachable()))) return null;
    const s3: S3Server = await startS3Server();
    const schema = uniqueName('drill');
    const bucket = uniqueName('data').replace(/_/g, '-');
    const env = {
      XRAY_DATABASE_URL: POSTGRES_URL,
      XRAY_QUEUE_URL: REDIS_URL,
      XRAY_REDIS_NAMESPACE: schema,
      XRAY_OBJECT_STORE_URL: `s3://${bucket}/platform`,
      XRAY_S3_ENDPOINT: s3.endpoint,
      XRAY_S3_ACCESS_KEY_ID: 'S3RVER',
      XRAY_S3_SECRET_ACCESS_KEY: 'S3RVER',
    };
    const targetUrl = `s3://${uniqueName('backup').replace(/_/g, '-')}/drill`;
    return {
      name: 'postgres',
      env,
      schema,
      targetUrl,
      async destroy() {
        await dropPostgresSchema(POSTGRES_URL, schema);
        const objects = await openObjectStore(env.XRAY_OBJECT_STORE_URL, S3_CREDENTIALS(env));
        for (;;) {
          const page = await objects.list('', { pageSize: 1000 });
          if (page.items.length === 0) break;
          for (const o of page.items) await objects.delete(o.key);
        }
        await objects.close();
      },
      async restore(id, drillEnv) {
        const config = testConfig(drillEnv.XRAY_HOME!, env);
        const objects = await openObjectStore(env.XRAY_OBJECT_STORE_URL, S3_CREDENTIALS(env));
        const target = await openObjectStore(targetUrl, S3_CREDENTIALS(env));
        try {
          await restoreBackup(target, id, { config, objects, schema }, { key: Buffer.from(KEY) });
        } finally {
          await objects.close();
          await target.close();
        }
      },
      async cleanup() {
        await dropPostgresSchema(POSTGRES_URL, schema).catch(() => {});
        await s3.close();
      },
    };
  });
});
