import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { backupRestore, backupVerify } from '../../../src/cli/commands/backup.js';
import { createBackup, readManifest } from '../../../src/core/backup/index.js';
import { testConfig } from '../../../src/core/config/index.js';
import { generateChestXray } from '../../../src/core/imaging/index.js';
import { openObjectStore } from '../../../src/core/objects/index.js';
import { startPlatform, type RunningPlatform } from '../../../src/main.js';
import { ModelRegistryService } from '../../../src/model-registry/service/registry-service.js';
import { tempHome } from '../../helpers/engines.js';

// Disaster-recovery drill (SQLite + filesystem objects): populate a running platform, back it up
// online, destroy its database and object store, restore, and every API answers as before.

const TINY = readFileSync(path.resolve(import.meta.dirname, '../../fixtures/tiny-model.onnx'));
const KEY = 'drill-backup-key-0123456789abcdef';
const SERVICES = ['data-pipeline', 'model-registry', 'deployment', 'monitoring'] as const;

async function api(base: string, url: string, init?: RequestInit): Promise<any> {
  const res = await fetch(base + url, init);
  const text = await res.text();
  assert.ok(res.ok, `${init?.method ?? 'GET'} ${url} → ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

describe('backup, destroy, restore: nothing is lost (SQLite + fs)', () => {
  const home = tempHome('xray-drill-');
  const targetDir = tempHome('xray-drill-target-');
  const env = { XRAY_HOME: home.dir, XRAY_LOG_LEVEL: 'silent', XRAY_SEED_MODEL: 'off', XRAY_BACKUP_KEY: KEY };
  const config = testConfig(home.dir, { XRAY_HOST: '127.0.0.1' });
  const targetUrl = `file:${targetDir.dir}`;
  let running: RunningPlatform | null = null;
  let image: Buffer;
  const before: Record<string, unknown> = {};
  let probability = 0;
  let backupId = '';
  after(async () => {
    await running?.close();
    home.cleanup();
    targetDir.cleanup();
  });

  test('populate, then back up while serving', async () => {
    running = await startPlatform({ config, services: SERVICES, randomPorts: true });
    const { urls } = running;
    for (const label of ['NORMAL', 'PNEUMONIA']) {
      const form = new FormData();
      form.append('label', label);
      for (let i = 0; i < 3; i++) form.append('file', new Blob([new Uint8Array(await generateChestXray({ seed: `${label}-${i}`, size: 64, pneumonia: label === 'PNEUMONIA' }))], { type: 'image/png' }), `${label}-${i}.png`);
      await api(urls['data-pipeline']!, '/ingest', { method: 'POST', body: form });
    }
    await api(urls['data-pipeline']!, '/version/create', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'drill', val_fraction: 0.34 }) });
    const registry = new ModelRegistryService(running.platform);
    const admin = { name: 'ada', role: 'admin' as const };
    const v = await registry.register({ name: 'pneumonia', actor: admin, source: { kind: 'upload', data: TINY, filename: 'model.onnx' }, metadata: { input_size: 16, threshold: 0.5, metrics: { auc: 0.9 } } });
    await registry.setStage({ name: 'pneumonia', version: v.version, stage: 'Production', actor: admin });
    for (let i = 0; i < 100 && !(await api(urls.deployment!, '/models')).models.length; i++) await new Promise((r) => setTimeout(r, 25));
    image = await generateChestXray({ seed: 'drill-predict', size: 96, pneumonia: true });
    for (let i = 0; i < 3; i++) {
      const p = await api(urls.deployment!, '/predict', { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(i === 0 ? image : await generateChestXray({ seed: `drill-${i}`, size: 96 })) });
      if (i === 0) probability = p.probability;
    }
    before.model = await api(urls['model-registry']!, '/models/pneumonia');
    before.lineage = await api(urls['model-registry']!, '/models/pneumonia/versions/1/lineage');
    before.versions = await api(urls['data-pipeline']!, '/versions');
    before.images = await api(urls['data-pipeline']!, '/images?page_size=100');

    // Online: the platform keeps serving while the snapshot is taken.
    const target = await openObjectStore(targetUrl);
    const m = await createBackup(running.platform, target, { key: Buffer.from(KEY) });
    backupId = m.id;
    assert.ok(m.objects.length >= 7, `images and the model are in the backup (${m.objects.length} objects)`);
    assert.ok(m.tables.audit_log! > 0 && m.tables.predictions === 3, JSON.stringify(m.tables));
    const again = await createBackup(running.platform, target, { key: Buffer.from(KEY) });
    assert.equal(again.copied, 0, 'a second backup is incremental: no object copied twice');
    await target.close();
  });

  test('verify passes on the backup; destroy database and objects; restore; every API answers as before', async () => {
    const lines: string[] = [];
    assert.equal(await backupVerify(backupId, { from: targetUrl }, { env, out: (l) => lines.push(l) }), 0, lines.join('\n'));
    assert.ok(lines.some((l) => /audit chain intact/.test(l)) && lines.some((l) => /tables restored with the recorded row counts/.test(l)), lines.join('\n'));

    await running!.close();
    running = null;
    for (const f of readdirSync(home.dir)) if (f.startsWith('xray.db')) rmSync(path.join(home.dir, f));
    rmSync(path.join(home.dir, 'objects'), { recursive: true, force: true });

    const out: string[] = [];
    assert.equal(await backupRestore(backupId, { from: targetUrl }, { env, out: (l) => out.push(l) }), 0);
    assert.equal(await backupRestore(backupId, { from: targetUrl }, { env, out: () => {} }).catch((e: Error) => e.message).then(String), 'the object store already holds ' + String(filesUnder(path.join(home.dir, 'objects')).length) + ' objects; restore into an empty one, or pass --force', 'a second restore refuses a non-empty home');

    running = await startPlatform({ config, services: SERVICES, randomPorts: true });
    const { urls } = running;
    assert.deepEqual(await api(urls['model-registry']!, '/models/pneumonia'), before.model);
    assert.deepEqual(await api(urls['model-registry']!, '/models/pneumonia/versions/1/lineage'), before.lineage);
    assert.deepEqual(await api(urls['data-pipeline']!, '/versions'), before.versions);
    assert.deepEqual(await api(urls['data-pipeline']!, '/images?page_size=100'), before.images);
    const verify = await api(urls.monitoring!, '/audit/verify');
    assert.equal(verify.ok, true, JSON.stringify(verify));
    for (let i = 0; i < 100 && !(await api(urls.deployment!, '/models')).models.length; i++) await new Promise((r) => setTimeout(r, 25));
    const p = await api(urls.deployment!, '/predict', { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(image) });
    assert.equal(p.probability, probability, 'the restored model gives the same probability for the same image');
  });

  test('a damaged backup fails verification: one flipped byte in an object, a truncated dump, another key', async () => {
    const manifest = await readManifest(await openObjectStore(targetUrl), backupId);
    const objectFile = path.join(targetDir.dir, 'objects', manifest.objects[0]!.key);
    const original = readFileSync(objectFile);
    const flipped = Buffer.from(original);
    flipped[flipped.length >> 1] ^= 0x01;
    writeFileSync(objectFile, flipped);
    const lines: string[] = [];
    assert.equal(await backupVerify(backupId, { from: targetUrl }, { env, out: (l) => lines.push(l) }), 1);
    assert.ok(lines.some((l) => /^FAIL objects: 1 of \d+ objects are missing or altered/.test(l)), lines.join('\n'));
    writeFileSync(objectFile, original);

    const dumpFile = path.join(targetDir.dir, manifest.database.key);
    const dump = readFileSync(dumpFile);
    writeFileSync(dumpFile, dump.subarray(0, dump.length >> 1));
    lines.length = 0;
    assert.equal(await backupVerify(backupId, { from: targetUrl }, { env, out: (l) => lines.push(l) }), 1);
    assert.ok(lines.some((l) => /^FAIL database: database dump sha256/.test(l)), lines.join('\n'));
    writeFileSync(dumpFile, dump);
    assert.equal(statSync(dumpFile).size, dump.length);

    lines.length = 0;
    assert.equal(await backupVerify(backupId, { from: targetUrl }, { env: { ...env, XRAY_BACKUP_KEY: 'some-other-site-key-0123456789' }, out: (l) => lines.push(l) }), 1);
    assert.ok(lines.some((l) => /^FAIL signature/.test(l)), lines.join('\n'));
  });
});
