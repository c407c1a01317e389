/**
 * The CLI: `xray audit verify` on the database directly (intact chain → 0; a row edited in SQL →
 * 1 naming it), and `xray drift detect` / `xray audit list` through the gateway.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { testConfig } from '../../src/core/config/index.js';
import { openDatabase } from '../../src/core/db/index.js';
import { openPlatform } from '../../src/core/platform.js';
import { verifyAuditChain } from '../../src/cli/commands/audit.js';
import { buildGatewayApp } from '../../src/gateway/app.js';
import { embeddings, insertPredictions, labelsWithRate, predictionRecords, probabilities, Rng, startMonitoring } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

let home: string;
const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, XRAY_HOME: home, XRAY_LOG_LEVEL: 'silent' });

async function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], { cwd: ROOT, env: { ...env(), ...extraEnv } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

before(async () => {
  home = mkdtempSync(path.join(tmpdir(), 'xray-audit-cli-'));
  const platform = await openPlatform(testConfig(home));
  for (let i = 1; i <= 5; i++) platform.audit.record({ actor: 'alice', action: 'model.promote', resource: `model/pneumonia/${i}`, service: 'model-registry', details: { to: 'Production' } });
  await platform.close();
});

after(() => rmSync(home, { recursive: true, force: true }));

test('an intact chain: exit 0, "chain intact (N records)"', async () => {
  const r = await cli(['audit', 'verify']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'chain intact (5 records)');
});

test('an empty or wrong database is not "intact": exit 1, saying nothing was verified', async () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'xray-audit-empty-'));
  try {
    const r = await cli(['audit', 'verify'], { XRAY_HOME: empty });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /nothing verified: no audit records in sqlite:.*is XRAY_HOME \/ XRAY_DATABASE_URL this platform's\?/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('a record altered in the database: exit 1 naming the first broken record', async () => {
  const database = await openDatabase(testConfig(home).databaseUrl);
  await sql`update audit_log set details = ${'{"to":"Archived"}'} where seq = 3`.execute(database.db);
  await database.close();
  const r = await cli(['audit', 'verify']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /chain broken at record 3: record content does not match its hash \(2 records before it verified\)/);

  const lines: string[] = [];
  assert.equal(await verifyAuditChain(env(), (l) => lines.push(l)), 1);
  assert.match(lines[0]!, /record 3/);
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
