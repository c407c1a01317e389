import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import sharp from 'sharp';
import { openDatabase, type Database } from '../../src/core/db/index.js';
import { dropPostgresSchema } from '../../src/core/db/postgres.js';
import { engineGate, POSTGRES_URL, postgresReachable, REDIS_URL, redisReachable, tempHome, uniqueName } from '../helpers/engines.js';
import { freePort, PROJECT_ROOT, spawnNode, waitForHttp } from '../helpers/process.js';

// Nothing answered is lost: a deployment killed with SIGKILL in the middle of a burst of
// predictions has, for every 2xx it sent, the prediction row and its audit record.

const CLIENTS = 8;

async function distinctImage(n: number): Promise<Buffer> {
  const px = Buffer.alloc(48 * 48);
  for (let i = 0; i < px.length; i++) px[i] = (i * 7 + n * 13) % 256;
  px.writeUInt32LE(n, 0); // every request's bytes differ: no cache answers
  return sharp(px, { raw: { width: 48, height: 48, channels: 1 } }).png().toBuffer();
}

async function burstThenKill(env: Record<string, string>, port: number): Promise<string[]> {
  const p = spawnNode(['bin/xray.js', 'serve', 'deployment'], env);
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${base}/health`, 60_000);
    const load = await fetch(`${base}/models/load`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: path.join(PROJECT_ROOT, 'test/fixtures/tiny-model.onnx'), name: 'pneumonia' }) });
    assert.equal(load.status, 200, await load.text());
    const answered: string[] = [];
    let n = 0;
    let killed = false;
    const client = async () => {
      while (!killed) {
        const body = await distinctImage(++n);
        try {
          const res = await fetch(`${base}/predict`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(body) });
          const json = (await res.json()) as { prediction_id?: string };
          if (res.ok && json.prediction_id) answered.push(json.prediction_id);
        } catch {
          /* the connection died with the process */
        }
      }
    };
    const clients = Array.from({ length: CLIENTS }, client);
    while (answered.length < 150) await new Promise((r) => setTimeout(r, 10));
    p.child.kill('SIGKILL');
    killed = true;
    await Promise.all(clients);
    await p.exited;
    return answered;
  } finally {
    p.child.kill('SIGKILL');
  }
}

async function assertAllStored(db: Database, answered: string[]): Promise<void> {
  const rows = await db.db.selectFrom('predictions').select('id').where('id', 'in', answered).execute();
  const stored = new Set(rows.map((r: { id: string }) => r.id));
  const missingRows = answered.filter((id) => !stored.has(id));
  assert.deepEqual(missingRows, [], `${missingRows.length} of ${answered.length} answered predictions have no prediction row`);
  const audit = await db.db.selectFrom('audit_log').select('resource').where('resource', 'in', answered.map((id) => `prediction:${id}`)).execute();
  const audited = new Set(audit.map((r: { resource: string }) => r.resource.slice('prediction:'.length)));
  const missingAudit = answered.filter((id) => !audited.has(id));
  assert.deepEqual(missingAudit, [], `${missingAudit.length} of ${answered.length} answered predictions have no audit record`);
}

describe('nothing answered is lost: kill -9 under load', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  test('SQLite: every 2xx has its prediction row and audit record', async () => {
    const home = tempHome('xray-kill9-');
    cleanups.push(async () => home.cleanup());
    const port = await freePort();
    const answered = await burstThenKill({ XRAY_HOME: home.dir, XRAY_SEED_MODEL: 'off', XRAY_IMPORT_ROOT: PROJECT_ROOT, XRAY_PORT_DEPLOYMENT: String(port), XRAY_LOG_LEVEL: 'silent' }, port);
    const db = await openDatabase(`sqlite:${path.join(home.dir, 'xray.db')}`);
    cleanups.push(() => db.close());
    await assertAllStored(db, answered);
  });

  test('PostgreSQL: every 2xx has its prediction row and audit record', async (t) => {
    if (!(await engineGate('PostgreSQL (durable answers)', await postgresReachable()))) return t.skip('PostgreSQL unreachable');
    if (!(await engineGate('Redis (durable answers: the scaled queue)', await redisReachable()))) return t.skip('Redis unreachable');
    const home = tempHome('xray-kill9-pg-');
    cleanups.push(async () => home.cleanup());
    const schema = uniqueName('kill9');
    const db = await openDatabase(POSTGRES_URL, { schema }); // creates the schema and its tables
    cleanups.push(async () => {
      await db.close();
      await dropPostgresSchema(POSTGRES_URL, schema);
    });
    const url = `${POSTGRES_URL}${POSTGRES_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const port = await freePort();
    const answered = await burstThenKill(
      { XRAY_HOME: home.dir, XRAY_DATABASE_URL: url, XRAY_QUEUE_URL: REDIS_URL, XRAY_REDIS_NAMESPACE: schema, XRAY_SEED_MODEL: 'off', XRAY_IMPORT_ROOT: PROJECT_ROOT, XRAY_PORT_DEPLOYMENT: String(port), XRAY_LOG_LEVEL: 'silent' },
      port,
    );
    await assertAllStored(db, answered);
  });
});
