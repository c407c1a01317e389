/** `xray audit verify` on the database directly: intact chain → 0; a row edited in SQL → 1 naming it. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { testConfig } from '../../src/core/config/index.js';
import { openDatabase } from '../../src/core/db/index.js';
import { openPlatform } from '../../src/core/platform.js';
import { verifyAuditChain } from '../../src/cli/commands/audit.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

let home: string;
const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, XRAY_HOME: home, XRAY_LOG_LEVEL: 'silent' });

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], { cwd: ROOT, env: env() });
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
