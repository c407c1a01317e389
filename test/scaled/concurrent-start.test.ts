/**
 * Safe concurrent start (issue 16 item 2): two model-registry replicas boot at the same moment on a
 * freshly created PostgreSQL database — migrations run once under an advisory lock, the shipped
 * model is registered once, no duplicate rows, both serve.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { testConfig } from '../../src/core/config/index.js';
import { startPlatform } from '../../src/main.js';
import { engineGate, POSTGRES_URL, postgresReachable, REDIS_URL, redisReachable, uniqueName } from '../helpers/engines.js';

test('two replicas boot together on an empty PostgreSQL database: migrations once, the default model registered once, both ready', async (t) => {
  if (!(await engineGate('PostgreSQL (concurrent start)', await postgresReachable()))) return t.skip('PostgreSQL unreachable');
  if (!(await engineGate('Redis (concurrent start: the scaled queue)', await redisReachable()))) return t.skip('Redis unreachable');
  const dbName = uniqueName('xray_boot');
  const namespace = dbName;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${dbName}`;
  const objects = mkdtempSync(path.join(tmpdir(), 'xray-boot-objects-'));
  const homes = [0, 1].map(() => mkdtempSync(path.join(tmpdir(), 'xray-boot-')));
  const running: Awaited<ReturnType<typeof startPlatform>>[] = [];
  try {
    const config = (home: string) =>
      testConfig(home, { XRAY_DATABASE_URL: url.toString(), XRAY_OBJECT_STORE_URL: `file:${objects}`, XRAY_SEED_MODEL: 'on', XRAY_PROMOTION_CANARY: 'off', XRAY_QUEUE_URL: REDIS_URL, XRAY_REDIS_NAMESPACE: namespace });
    const started = await Promise.allSettled(homes.map((home) => startPlatform({ config: config(home), services: ['model-registry'], randomPorts: true })));
    for (const s of started) if (s.status === 'fulfilled') running.push(s.value);
    assert.deepEqual(started.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason)), [], 'both replicas start');

    const check = new pg.Client({ connectionString: url.toString() });
    await check.connect();
    try {
      const migrations = await check.query<{ name: string; n: number }>('select name, count(*)::int as n from kysely_migration group by name');
      assert.ok(migrations.rows.length > 0);
      assert.deepEqual(migrations.rows.filter((r) => r.n !== 1), [], 'each migration recorded once');
      const models = await check.query<{ name: string }>('select name from registered_models');
      const versions = await check.query<{ version: number }>("select version from model_versions where name = 'pneumonia'");
      console.log(`[scaled] concurrent boot: ${migrations.rows.length} migrations once each; registered models ${JSON.stringify(models.rows)}; pneumonia versions ${JSON.stringify(versions.rows)}`);
      assert.deepEqual(models.rows.map((r) => r.name), ['pneumonia'], 'the default model once');
      assert.deepEqual(versions.rows.map((r) => r.version), [1], 'one version');
    } finally {
      await check.end();
    }
    for (const r of running) {
      const res = await fetch(`${r.urls['model-registry']}/ready`);
      assert.equal(res.status, 200);
      const model = (await (await fetch(`${r.urls['model-registry']}/models/pneumonia/versions/production`)).json()) as { model_version?: { version: number } };
      assert.equal(model.model_version?.version, 1, JSON.stringify(model));
    }
  } finally {
    await Promise.allSettled(running.map((r) => r.close()));
    await admin.query(`drop database if exists ${dbName} with (force)`).catch(() => {});
    await admin.end();
    for (const d of [objects, ...homes]) rmSync(d, { recursive: true, force: true });
  }
});
