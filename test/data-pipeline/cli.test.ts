import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { registerData } from '../../src/cli/commands/data.js';
import { generateDataset } from '../../src/core/imaging/index.js';
import { buildGatewayApp } from '../../src/gateway/app.js';
import { openPipeline } from './helpers.js';

/** Runs `xray <args>` in-process with the real command module; returns what it printed. */
async function xrayCli(url: string, args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerData(program);
  const printed: string[] = [];
  const log = console.log;
  const saved = { url: process.env.XRAY_URL, key: process.env.XRAY_API_KEY };
  console.log = (...parts: unknown[]) => void printed.push(parts.join(' '));
  process.env.XRAY_URL = url;
  delete process.env.XRAY_API_KEY;
  try {
    await program.parseAsync(['node', 'xray', ...args]);
  } finally {
    console.log = log;
    if (saved.url === undefined) delete process.env.XRAY_URL;
    else process.env.XRAY_URL = saved.url;
    if (saved.key !== undefined) process.env.XRAY_API_KEY = saved.key;
  }
  return printed.join('\n');
}

test('xray data import / version create / export through the gateway to a running service', async (t) => {
  const p = await openPipeline();
  t.after(() => p.close());
  const dataUrl = await p.app.listen({ host: '127.0.0.1', port: 0 });
  const config = p.platform.config;
  const gateway = await buildGatewayApp({ ...config, serviceUrls: { ...config.serviceUrls, 'data-pipeline': dataUrl } }, p.platform.logger);
  t.after(() => gateway.close());
  const gatewayUrl = await gateway.listen({ host: '127.0.0.1', port: 0 });

  const ds = await generateDataset(path.join(p.home, 'kermany'), { perClass: 4, seed: 9, size: 128 });
  const other = await generateDataset(path.join(p.home, 'remote'), { perClass: 2, seed: 10, size: 128 });
  const xray = (...args: string[]) => xrayCli(gatewayUrl, args);

  const imported = JSON.parse(await xray('data', 'import', path.join(p.home, 'kermany'), '--json'));
  assert.equal(imported.ingested, ds.files.length);
  const uploaded = JSON.parse(await xray('data', 'import', path.join(p.home, 'remote'), '--upload', '--json'));
  assert.equal(uploaded.ingested, other.files.length);

  const created = await xray('data', 'version', 'create', '--name', 'cli', '--val-fraction', '0.25', '--seed', '42', '--size', '64', '--mode', 'letterbox');
  const id = /([0-9a-f]{64})/.exec(created)?.[1];
  assert.ok(id, created);

  const listed = JSON.parse(await xray('data', 'versions', '--json'));
  assert.deepEqual(listed.map((v: { id: string }) => v.id), [id]);
  const validated = await xray('data', 'validate', '--dataset', id, '--json');
  process.exitCode = undefined; // the command sets 2 when the report is not ok
  assert.equal(JSON.parse(validated).summary.images, ds.files.length + other.files.length);

  const out = path.join(p.home, 'exported');
  await xray('data', 'export', id, out);
  const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.version_id, id);
  assert.equal(manifest.items.length, ds.files.length + other.files.length);
  assert.equal(manifest.preprocessing.size, 64);
  assert.equal(readdirSync(path.join(out, 'images')).length, manifest.items.length);
  for (const item of manifest.items) assert.ok(existsSync(path.join(out, item.file)));
});
