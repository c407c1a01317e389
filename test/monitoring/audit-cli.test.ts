/**
 * The CLI through the API only: `xray audit verify` and `xray keys …` call the platform at XRAY_URL
 * with the caller's key (never a local database), and `xray drift detect` / `xray audit list`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { testConfig } from '../../src/core/config/index.js';
import { startPlatform, type RunningPlatform } from '../../src/main.js';
import { buildGatewayApp } from '../../src/gateway/app.js';
import { embeddings, insertPredictions, labelsWithRate, predictionRecords, probabilities, Rng, startMonitoring } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const ADMIN = 'xk_admin_key_for_the_cli_test_0123456789';

let home: string;
/** The CLI's XRAY_HOME: empty, so any local database it opened would appear here. */
let elsewhere: string;
let running: RunningPlatform;
const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, XRAY_HOME: elsewhere, XRAY_LOG_LEVEL: 'silent', XRAY_URL: running.urls.gateway });

async function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/index.ts'), ...args], { cwd: ROOT, env: { ...env(), ...extraEnv } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function status(key: string): Promise<number> {
  return (await fetch(`${running.urls.gateway}/api/monitoring/alerts`, { headers: { authorization: `Bearer ${key}` } })).status;
}

before(async () => {
  home = mkdtempSync(path.join(tmpdir(), 'xray-audit-cli-'));
  elsewhere = mkdtempSync(path.join(tmpdir(), 'xray-cli-cwd-'));
  running = await startPlatform({
    config: testConfig(home, { XRAY_AUTH: 'on', XRAY_ADMIN_KEY: ADMIN, XRAY_WEB_DIR: path.join(home, 'no-web') }),
    services: ['monitoring'],
    gateway: true,
    randomPorts: true,
  });
});

after(async () => {
  await running.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(elsewhere, { recursive: true, force: true });
});

describe('audit verify and keys through the API', () => {
  test('an empty trail is not "intact"; without a key the command is refused', async () => {
    const empty = await cli(['audit', 'verify'], { XRAY_API_KEY: ADMIN });
    assert.equal(empty.code, 1, empty.stderr);
    assert.match(empty.stdout, /nothing verified: the audit trail at http:\/\/127\.0\.0\.1:\d+ has no records/);
    const anonymous = await cli(['audit', 'verify']);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /an API key is required/);
  });

  test('keys: create (with expiry), use (last used), list, rotate, revoke — every change audited under the caller', async () => {
    const created = await cli(['keys', 'create', '--name', 'pacs-bridge', '--role', 'viewer', '--expires-in-days', '30'], { XRAY_API_KEY: ADMIN });
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout) as { id: string; key: string; expires_at: number; status: string };
    assert.match(key.key, /^xk_/);
    assert.equal(key.status, 'active');
    assert.ok(Math.abs(key.expires_at - (Date.now() + 30 * 86400_000)) < 60_000);
    assert.equal(await status(key.key), 200, 'the key works against the platform the CLI named');

    const listed = await cli(['keys', 'list', '--json'], { XRAY_API_KEY: ADMIN });
    const mine = (JSON.parse(listed.stdout) as { id: string; last_used_at: number | null }[]).find((k) => k.id === key.id)!;
    assert.ok(mine.last_used_at && Date.now() - mine.last_used_at < 60_000, 'last use recorded');

    const viewerTries = await cli(['keys', 'list'], { XRAY_API_KEY: key.key });
    assert.equal(viewerTries.code, 1);
    assert.match(viewerTries.stderr, /role 'viewer' may not do this/);

    const rotated = await cli(['keys', 'rotate', key.id], { XRAY_API_KEY: ADMIN });
    assert.equal(rotated.code, 0, rotated.stderr);
    const next = JSON.parse(rotated.stdout) as { id: string; key: string; previous: { status: string } };
    assert.equal(next.previous.status, 'revoked');
    assert.equal(await status(key.key), 401, 'the rotated-out key is refused');
    assert.equal(await status(next.key), 200);

    const graceful = JSON.parse((await cli(['keys', 'rotate', next.id, '--grace-seconds', '3600'], { XRAY_API_KEY: ADMIN })).stdout) as { id: string; key: string; previous: { status: string } };
    assert.equal(graceful.previous.status, 'rotating');
    assert.equal(await status(next.key), 200, 'the old key works during the grace period');

    assert.equal((await cli(['keys', 'revoke', graceful.id], { XRAY_API_KEY: ADMIN })).code, 0);
    assert.equal(await status(graceful.key), 401);
    const unknown = await cli(['keys', 'revoke', 'no-such-key'], { XRAY_API_KEY: ADMIN });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /does not exist/);

    // An expired key is refused.
    const short = await running.platform.keys.create('short-lived', 'viewer', { expiresAt: Date.now() + 150 });
    assert.equal(await status(short.key), 200);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await status(short.key), 401);

    await running.platform.audit.flush();
    const changes = await running.platform.audit.query({ resource: `key:${key.id}` });
    assert.deepEqual(changes.items.map((r) => [r.action, r.actor]).sort(), [['key.create', 'bootstrap-admin'], ['key.rotate', 'bootstrap-admin']]);
    assert.deepEqual(readdirSync(elsewhere), [], 'the CLI opened no local database');
  });

  test('an intact chain: exit 0; a record altered in the database: exit 1 naming it', async () => {
    const ok = await cli(['audit', 'verify'], { XRAY_API_KEY: ADMIN });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout.trim(), /^chain intact \(\d+ records\)$/);
    await sql`update audit_log set details = ${'{"to":"Archived"}'} where seq = 2`.execute(running.platform.database.db);
    const broken = await cli(['audit', 'verify'], { XRAY_API_KEY: ADMIN });
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /chain broken at record 2: record content does not match its hash \(1 records before it verified\)/);
    assert.equal(existsSync(path.join(elsewhere, 'xray.db')), false);
  });
});

describe('commands through the gateway', () => {
  test('xray drift detect and xray audit list', async (t) => {
    const h = await startMonitoring();
    t.after(() => h.close());
    const rng = new Rng('cli');
    const labels = labelsWithRate(rng, 80, 0.4);
    const stats = Array.from({ length: 80 }, () => ({ mean: rng.normal(110, 10), std: rng.normal(60, 5) }));
    await insertPredictions(
      h.platform,
      predictionRecords({ idPrefix: 'cli', start: Date.now() - 60_000, stats: stats as never, embeddings: embeddings(rng, labels), probabilities: probabilities(rng, labels) }),
    );
    const ref = await h.app.inject({ method: 'POST', url: '/drift/reference', payload: { model: 'pneumonia', version: '1', window: { first_n: 40 } } });
    assert.equal(ref.statusCode, 201, ref.body);
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (h.app.server.address() as AddressInfo).port;
    // No web UI here: the gateway only proxies (serving a built UI is the gateway's own test).
    const config = testConfig(h.home, { XRAY_SERVICE_URLS: `monitoring=http://127.0.0.1:${port}`, XRAY_WEB_DIR: path.join(h.home, 'no-web') });
    const gateway = await buildGatewayApp(config, h.platform.logger);
    t.after(() => gateway.close());
    await gateway.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(gateway.server.address() as AddressInfo).port}`;

    const detect = await cli(['drift', 'detect', '--model', 'pneumonia', '--last-n', '40'], { XRAY_URL: url });
    assert.equal(detect.code, 0, detect.stderr);
    assert.match(detect.stdout, /^pneumonia v1: NO_DRIFT \(40 predictions vs 40 reference rows; report [0-9a-f-]{36}\)/);
    assert.match(detect.stdout, /embedding_mmd\s+mmd_rbf_permutation/);
    assert.match(detect.stdout, /performance .*skipped: need 30 labelled predictions/);

    const list = await cli(['audit', 'list', '--action', 'drift.check', '--json'], { XRAY_URL: url });
    assert.equal(list.code, 0, list.stderr);
    const page = JSON.parse(list.stdout) as { items: { action: string; actor: string }[] };
    assert.equal(page.items.length, 1);
    assert.equal(page.items[0]!.action, 'drift.check');

    const missing = await cli(['drift', 'detect', '--model', 'nope'], { XRAY_URL: url });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /model 'nope' has no prediction records/);
  });
});
